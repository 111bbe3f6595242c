// POST /hooks/github, /hooks/gitlab: verify, dedupe, record runs, enqueue. Node, Lambda, fetch.
import { handle } from "hono/aws-lambda";
import { awsApis } from "../lib/aws/apis.ts";
import { loadFunctionConfig } from "../lib/aws/secrets.ts";
import { webhookApp } from "../lib/http/webhook-app.ts";
import { createCoreServices } from "../lib/core-services.ts";

const config = await loadFunctionConfig();
export const app = webhookApp(await createCoreServices(config, awsApis(config)));
export const handler = handle(app);
export default { fetch: app.fetch };
