// Deno's own multi-worker option, run with `deno serve --parallel` (DENO_JOBS=2): the same
// response as `polybind serve`.

const BODY = "Hello from polybind\n";

export default {
  fetch(): Response {
    return new Response(BODY, { headers: { "content-type": "text/plain", "x-polybind-worker": "0" } });
  },
};
