// POST /hooks/github, /hooks/gitlab: verify, dedupe, record runs, enqueue. Node, Lambda, fetch.
import { handle } from "hono/aws-lambda";
import { loadConfig } from "../lib/config.ts";
import { webhookApp } from "../lib/http/server.ts";
import { createCoreServices } from "../lib/core-services.ts";

export const app = webhookApp(await createCoreServices(loadConfig()));
export const handler = handle(app);
export default { fetch: app.fetch };
