import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { AwsKeys, Config } from "../config.ts";
import { sdkSqsApi, type SqsApi } from "../queue/sqs-api.ts";
import { sdkDynamoApi, type DynamoApi } from "../store/dynamo-api.ts";

/** The table's and the queue's APIs, as every function reaches them. */
export interface AwsApis {
  dynamo: DynamoApi;
  sqs: SqsApi;
}

type Where = Pick<Config, "AWS_REGION" | "AWS_ENDPOINT_URL_DYNAMODB" | "AWS_ENDPOINT_URL_SQS">;

/**
 * The table and the queue through the AWS SDK: on AWS itself, at an AWS-compatible endpoint
 * when the config names one, with `credentials` when given (else the SDK's own chain).
 */
export function sdkApis(config: Where, credentials?: AwsKeys): AwsApis {
  // The clients send the same few commands all day: resolve each one's middleware once.
  const options = (endpoint: string | undefined) => ({ region: config.AWS_REGION, cacheMiddleware: true, ...(endpoint ? { endpoint } : {}), ...(credentials ? { credentials } : {}) });
  return {
    dynamo: sdkDynamoApi(new DynamoDBClient(options(config.AWS_ENDPOINT_URL_DYNAMODB))),
    sqs: sdkSqsApi(new SQSClient(options(config.AWS_ENDPOINT_URL_SQS))),
  };
}
