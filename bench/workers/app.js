// The fetch app both sides of bench/workers.mjs serve: `polybind serve bench/workers/app.js`
// and each runtime's own multi-worker option (deno serve --parallel runs it as it is; the Bun
// and Node.js servers import its fetch). A .js file, so that every runtime loads it.

const BODY = "Hello from polybind\n";

export default {
  fetch: () => new Response(BODY, { headers: { "content-type": "text/plain" } }),
};
