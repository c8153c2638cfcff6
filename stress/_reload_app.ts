// The app of stress/reload.test.ts: answers "ok" to everything, and throws as it is imported
// when the file named by POLYBIND_RELOAD_MARKER exists (the test creates it before a SIGHUP, so
// that the new generation fails and the old one must serve on).

import { existsSync } from "node:fs";
import process from "node:process";

const marker = process.env.POLYBIND_RELOAD_MARKER;
if (marker && existsSync(marker)) throw new Error(`broken at import: ${marker} exists (a test asked for it)`);

export default { fetch: (): Response => new Response("ok\n") };
