import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { isLoopback } from "./aws/loopback.ts";
import { systemClock, type Clock } from "./clock.ts";
import { secretsOf, type Config } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { ensureQueue, SqsQueue } from "./queue/sqs.ts";
import { sdkSqsApi, type SqsApi } from "./queue/sqs-api.ts";
import { loopbackSqsApi } from "./queue/sqs-loopback.ts";
import type { IngestDeps } from "./runs/ingest.ts";
import { sdkDynamoApi, type DynamoApi } from "./store/dynamo-api.ts";
import { DynamoDeliveryStore } from "./store/dynamo-deliveries.ts";
import { loopbackDynamoApi } from "./store/dynamo-loopback.ts";
import { DynamoRunStore } from "./store/dynamo.ts";

/**
 * What every function stands on: the config, the log, the table and the queue. The webhook
 * needs nothing more, so its bundle carries no engine, provider or chat client (README,
 * Serverless: Bundles); `createServices` builds the rest on top of this.
 */
export interface CoreServices {
  config: Config;
  log: Logger;
  clock: Clock;
  dynamo: DynamoApi;
  sqs: SqsApi;
  store: DynamoRunStore;
  /** Push deliveries, from the webhook's record to their runs. */
  deliveries: DynamoDeliveryStore;
  queue: SqsQueue;
  ingest: IngestDeps;
}

export interface CoreOverrides {
  clock?: Clock;
  log?: Logger;
}

export async function createCoreServices(config: Config, overrides: CoreOverrides = {}): Promise<CoreServices> {
  const log = overrides.log ?? createLogger(config.HOIST_LOG_LEVEL, secretsOf(config));
  const clock = overrides.clock ?? systemClock;
  const { dynamo, sqs } = awsApis(config);
  const store = new DynamoRunStore({ api: dynamo, table: config.HOIST_TABLE });
  // Local servers start empty: create what the cloud stack would have created.
  if (config.AWS_ENDPOINT_URL_DYNAMODB) await store.ensureTable();
  const queue = new SqsQueue(sqs, config.HOIST_QUEUE_URL ?? (await ensureQueue(sqs, config.HOIST_QUEUE)));
  const deliveries = new DynamoDeliveryStore(dynamo, config.HOIST_TABLE);
  return { config, log, clock, dynamo, sqs, store, deliveries, queue, ingest: { deliveries, queue, clock, redriveAfterMs: config.HOIST_REDRIVE_AFTER_MS } };
}

/**
 * The table's and the queue's APIs: through the AWS SDK, as on AWS, or straight to the
 * embedded servers on this machine (lib/aws/loopback.ts says why) unless HOIST_AWS_TRANSPORT
 * asks for the SDK there too.
 */
function awsApis(config: Config): { dynamo: DynamoApi; sqs: SqsApi } {
  const lean = (endpoint: string | undefined): endpoint is string => config.HOIST_AWS_TRANSPORT === "auto" && endpoint !== undefined && isLoopback(endpoint);
  const dynamoAt = config.AWS_ENDPOINT_URL_DYNAMODB;
  const sqsAt = config.AWS_ENDPOINT_URL_SQS;
  return {
    dynamo: lean(dynamoAt) ? loopbackDynamoApi(dynamoAt) : sdkDynamoApi(new DynamoDBClient(awsOptions(config, dynamoAt))),
    sqs: lean(sqsAt) ? loopbackSqsApi(sqsAt) : sdkSqsApi(new SQSClient(awsOptions(config, sqsAt))),
  };
}

/** SDK client options for AWS itself, or an AWS-compatible service at `endpoint`. */
function awsOptions(config: Config, endpoint: string | undefined) {
  // The clients send the same few commands all day: resolve each one's middleware once.
  return { region: config.AWS_REGION, cacheMiddleware: true, ...(endpoint ? { endpoint } : {}) };
}
