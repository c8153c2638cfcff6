// Where a worker's entry point puts the context workerContext() returns: a global, since the
// worker's module may load its own copy of polybind (the package where the entry runs sources).

/** The global key of the running worker's context. */
export const CONTEXT_KEY: unique symbol = Symbol.for("polybind.worker") as never;
