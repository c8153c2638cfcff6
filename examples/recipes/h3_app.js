// h3_app.js: an h3 app as h3 writes it; supervise() serves its default export.
import { H3 } from "h3";

export default new H3().get("/", () => "Hello from h3\n");
