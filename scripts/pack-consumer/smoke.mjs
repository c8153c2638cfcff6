// Imports "polybind" by name from the installed tarball, on the runtime running this file.
// Usage: <runtime> smoke.mjs '<JSON array of the export names expected>' <deno|bun|node>

import process from "node:process";
import * as polybind from "polybind";

const expected = JSON.parse(process.argv[2]);
const runtime = process.argv[3];
const names = Object.keys(polybind).sort();
if (JSON.stringify(names) !== JSON.stringify(expected)) {
  throw new Error(`"polybind" exports ${names.join(", ")}; expected ${expected.join(", ")}`);
}
const caps = polybind.capabilities();
if (caps.runtime !== runtime) throw new Error(`capabilities().runtime is ${caps.runtime}, expected ${runtime}`);
const cli = import.meta.resolve("polybind/cli");
if (!cli.endsWith("/node_modules/polybind/dist/cli/polybind.js")) throw new Error(`"polybind/cli" resolves to ${cli}`);
const listener = await polybind.createListener({ host: "127.0.0.1", port: 0 });
await listener.close();
console.log(`smoke ok on ${caps.runtime} ${caps.version}: ${names.length} exports`);
