// The multi-listener decision: independent SO_REUSEPORT sockets or one shared socket.
// Pure: the same request and capabilities always give the same strategy and reason.

/** How a set of listeners is made. */
export type Strategy = "single" | "reuseport" | "shared";

/** A strategy and the sentence that explains it. */
export interface StrategyChoice {
  readonly strategy: Strategy;
  readonly reason: string;
}

/** Everything the decision depends on. */
export interface StrategyInput {
  readonly count: number;
  readonly shared: boolean;
  readonly unix: boolean;
  readonly transport: "tcp" | "udp";
  /** Whether the kernel spreads load over independent sockets on one port, for this transport. */
  readonly reusePort: boolean;
  readonly os: string;
  /** What enables reusePort on this runtime, when it is off (from the adapter). */
  readonly missing: string;
}

/** Whether the kernel of `os` balances connections across SO_REUSEPORT sockets. */
export function kernelBalances(os: string): boolean {
  return os === "linux" || os === "android";
}

/**
 * Decides how to make `count` listeners.
 *
 * @param input The request and the capabilities.
 * @returns The strategy and its reason.
 */
export function chooseStrategy(input: StrategyInput): StrategyChoice {
  const { count, transport } = input;
  const n = `${count} ${transport.toUpperCase()} listeners`;
  if (count === 1) return { strategy: "single", reason: "one listener: one socket" };
  if (input.unix) return { strategy: "shared", reason: `Unix sockets are always shared: one socket for ${n}` };
  if (input.shared) return { strategy: "shared", reason: `shared was asked for: one socket for ${n}` };
  if (input.reusePort) {
    return { strategy: "reuseport", reason: `SO_REUSEPORT: ${count} sockets on one port, the kernel balances` };
  }
  const why = kernelBalances(input.os)
    ? `SO_REUSEPORT unavailable (${input.missing})`
    : `SO_REUSEPORT does not balance load on ${input.os}`;
  return { strategy: "shared", reason: `${why}: one shared socket for ${n}` };
}
