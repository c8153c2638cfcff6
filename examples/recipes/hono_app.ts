// hono_app.ts: a Hono app as Hono writes it; supervise() serves its default export.
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text("Hello from Hono\n"));
export default app;
