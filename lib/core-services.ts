import type { AwsApis } from "./aws/sdk-apis.ts";
import { systemClock, type Clock } from "./clock.ts";
import { secretsOf, type Config } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { ensureQueue, SqsQueue } from "./queue/sqs.ts";
import type { SqsApi } from "./queue/sqs-api.ts";
import type { IngestDeps } from "./runs/ingest.ts";
import type { DynamoApi } from "./store/dynamo-api.ts";
import { DynamoDeliveryStore } from "./store/dynamo-deliveries.ts";
import { ensureTable } from "./store/dynamo-table.ts";

/**
 * What every function stands on: the config, the log, the table and the queue. The webhook
 * needs nothing more, so its bundle carries no engine, provider or chat client (README,
 * Serverless: Bundles) and runs on Workers too (functions/edge.ts); `createServices` builds
 * the rest on top of this. The caller chooses how the table and queue are reached
 * (lib/aws/apis.ts on Node, lib/aws/sdk-apis.ts anywhere).
 */
export interface CoreServices {
  config: Config;
  log: Logger;
  clock: Clock;
  dynamo: DynamoApi;
  sqs: SqsApi;
  /** Push deliveries, from the webhook's record to their runs. */
  deliveries: DynamoDeliveryStore;
  queue: SqsQueue;
  ingest: IngestDeps;
}

export interface CoreOverrides {
  clock?: Clock;
  log?: Logger;
}

export async function createCoreServices(config: Config, { dynamo, sqs }: AwsApis, overrides: CoreOverrides = {}): Promise<CoreServices> {
  const log = overrides.log ?? createLogger(config.HOIST_LOG_LEVEL, secretsOf(config));
  const clock = overrides.clock ?? systemClock;
  // Local servers start empty: create what the cloud stack would have created. A queue's URL
  // is the stack's (or a local runtime's, which made both): then, as on AWS, nothing is asked.
  if (config.AWS_ENDPOINT_URL_DYNAMODB && !config.HOIST_QUEUE_URL) await ensureTable(dynamo, config.HOIST_TABLE);
  const queue = new SqsQueue(sqs, config.HOIST_QUEUE_URL ?? (await ensureQueue(sqs, config.HOIST_QUEUE)));
  const deliveries = new DynamoDeliveryStore(dynamo, config.HOIST_TABLE);
  return { config, log, clock, dynamo, sqs, deliveries, queue, ingest: { deliveries, queue, clock, redriveAfterMs: config.HOIST_REDRIVE_AFTER_MS } };
}
