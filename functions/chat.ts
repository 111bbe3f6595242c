// POST /chat/slack (Slack's buttons), GET/POST /chat/approve/:token (robots' signed links): verify, then decide at the run's gate.
import { handle } from "hono/aws-lambda";
import { loadConfig } from "../lib/config.ts";
import { chatApp } from "../lib/http/server.ts";
import { createServices } from "../lib/services.ts";

export const app = chatApp(await createServices(loadConfig()));
export const handler = handle(app);
export default { fetch: app.fetch };
