// POST /hooks/github, /hooks/gitlab: verify, dedupe, record runs, enqueue. Node, Lambda, fetch.
import { handle } from "hono/aws-lambda";
import { loadConfig } from "../lib/config.ts";
import { webhookApp } from "../lib/http/server.ts";
import { createServices } from "../lib/services.ts";

export const app = webhookApp(await createServices(loadConfig()));
export const handler = handle(app);
export default { fetch: app.fetch };
