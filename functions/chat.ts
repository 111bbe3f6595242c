// POST /chat/slack (Slack's buttons), GET/POST /chat/approve/:token (robots' signed links): verify, then decide at the run's gate.
import { handle } from "hono/aws-lambda";
import { loadFunctionConfig } from "../lib/aws/secrets.ts";
import { chatApp } from "../lib/http/server.ts";
import { createServices } from "../lib/services.ts";

export const app = chatApp(await createServices(await loadFunctionConfig()));
export const handler = handle(app);
export default { fetch: app.fetch };
