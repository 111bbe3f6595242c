// SQS consumer: each message wakes one run or resolves one delivery; failures are reported per message.
import { loadFunctionConfig } from "../lib/aws/secrets.ts";
import { handleSqsBatch } from "../lib/queue/lambda.ts";
import { handleWakeUp } from "../lib/runs/wake.ts";
import { createServices } from "../lib/services.ts";

const services = await createServices(await loadFunctionConfig());

export async function handler(event: unknown) {
  try {
    return await handleSqsBatch(event, services.log, (w) => handleWakeUp(services, w));
  } finally {
    // Commit statuses still on their way: a frozen Lambda would lose them.
    await services.people.reporter.flush();
  }
}
