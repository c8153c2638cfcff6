// The raw side of every measure, for whichever runtime runs it: loads raw_<runtime>.mjs and
// starts the server the JSON argument { mode, maxMs } asks for ("stream" is served like "rw":
// hand-written code has no streams to pay for).

import { bound, options, ready, runtime } from "./_common.mjs";

const { mode, maxMs } = options();
bound(maxMs);
const impl = await import(`./raw_${runtime()}.mjs`);
const start = impl[mode === "stream" ? "rw" : mode];
if (start === undefined) throw new TypeError(`Unknown mode for ${runtime()}: ${mode}`);
ready({ port: await start(), runtime: runtime() });
