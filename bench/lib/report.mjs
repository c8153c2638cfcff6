// Turns measurements into the one table (runtime × measure × polybind × raw × ratio), the JSON
// file a later run can be compared with, and that comparison.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { dirname } from "node:path";

/** The median of a list of numbers. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The machine the run is on. */
export function machine() {
  const list = cpus();
  return {
    cpus: list.length,
    model: list[0]?.model ?? "unknown",
    kernel: release(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/** A number shown with 3 significant digits, thousands grouped. */
export function fmt(n) {
  if (typeof n !== "number") return String(n);
  if (!Number.isFinite(n)) return "-";
  const digits = Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function cell(row, side) {
  const shown = row[`${side}Text`] ?? fmt(row[side]);
  return row.unit && row[`${side}Text`] === undefined ? `${shown} ${row.unit}` : shown;
}

/** Busy share under which a server is taken as not saturated by its load. */
export const SATURATED = 0.8;

/**
 * Whether a server of this row spent less than SATURATED of the CPU it could have on the CPU:
 * `details.share` of a core (1 in turn, half at once, or the cap of its CPU group).
 */
export function unsaturated(row) {
  const d = row.details;
  return d?.polyBusy !== undefined && Math.min(d.polyBusy, d.rawBusy) < SATURATED * (d.share ?? 1);
}

/** The result table, as Markdown (readable in a terminal too). */
export function table(rows) {
  const head = ["runtime", "measure", "polybind", "raw", "ratio", "CPU/op ratio", "target", "met"];
  const lines = rows.map((r) => [
    r.runtime,
    r.measure,
    cell(r, "poly"),
    cell(r, "raw"),
    r.ratio === undefined ? "-" : `${r.ratio.toFixed(3)}${unsaturated(r) ? " †" : ""}`,
    r.cpuRatio === undefined ? "-" : r.cpuRatio.toFixed(3),
    r.target ?? "-",
    r.met === undefined ? "-" : r.met ? "yes" : "**no**",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...lines.map(line)].join("\n");
}

/** Writes the run as JSON. */
export function writeJson(path, run) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(run, null, 2)}\n`);
}

/** How each ratio moved since an earlier run's JSON file. */
export function compare(path, rows) {
  const before = JSON.parse(readFileSync(path, "utf8"));
  const key = (r) => `${r.runtime} ${r.id}`;
  const old = new Map(before.rows.map((r) => [key(r), r]));
  const out = [`Compared with ${path} (${before.date}):`];
  for (const r of rows) {
    const o = old.get(key(r));
    if (o === undefined || r.ratio === undefined || o.ratio === undefined) continue;
    const delta = r.ratio - o.ratio;
    out.push(
      `  ${r.runtime.padEnd(7)} ${r.measure.padEnd(36)} ${o.ratio.toFixed(3)} -> ${r.ratio.toFixed(3)} ` +
        `(${delta >= 0 ? "+" : ""}${delta.toFixed(3)})`,
    );
  }
  return out.join("\n");
}
