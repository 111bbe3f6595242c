// GET /api/runs, /api/runs/:id, /api/runs/:id/logs behind HOIST_API_TOKEN. Node, Lambda, fetch.
import { handle } from "hono/aws-lambda";
import { loadFunctionConfig } from "../lib/aws/secrets.ts";
import { apiApp } from "../lib/http/server.ts";
import { createServices } from "../lib/services.ts";

export const app = apiApp(await createServices(await loadFunctionConfig()));
export const handler = handle(app);
export default { fetch: app.fetch };
