// POST /hooks/github, /hooks/gitlab on Lambda: verify, dedupe, record the delivery, enqueue.
import { awsApis } from "../lib/aws/apis.ts";
import { loadFunctionConfig } from "../lib/aws/secrets.ts";
import { createCoreServices } from "../lib/core-services.ts";
import { webhookLambda } from "../lib/http/webhook-lambda.ts";
import { webhookOptions } from "../lib/http/webhook-receive.ts";

const config = await loadFunctionConfig();
const core = await createCoreServices(config, awsApis(config));
export const handler = webhookLambda(webhookOptions(core), core.log);
