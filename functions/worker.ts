// SQS consumer: each message wakes one run; failures are reported per message.
import { loadConfig } from "../lib/config.ts";
import { handleSqsBatch } from "../lib/queue/lambda.ts";
import { advanceRun } from "../lib/runs/advance.ts";
import { createServices } from "../lib/services.ts";

const services = await createServices(loadConfig());

export const handler = (event: unknown) => handleSqsBatch(event, services.log, (w) => advanceRun(services.advance, w.runId));
