import type { Config } from "../config.ts";
import { loopbackSqsApi } from "../queue/sqs-loopback.ts";
import { loopbackDynamoApi } from "../store/dynamo-loopback.ts";
import { isLoopback } from "./loopback.ts";
import { sdkApis, type AwsApis } from "./sdk-apis.ts";

/**
 * The table's and the queue's APIs on Node: through the AWS SDK, as on AWS, or straight to the
 * embedded servers on this machine (lib/aws/loopback.ts says why) unless HOIST_AWS_TRANSPORT
 * asks for the SDK there too.
 */
export function awsApis(config: Config): AwsApis {
  const lean = (endpoint: string | undefined): endpoint is string => config.HOIST_AWS_TRANSPORT === "auto" && endpoint !== undefined && isLoopback(endpoint);
  const dynamoAt = config.AWS_ENDPOINT_URL_DYNAMODB;
  const sqsAt = config.AWS_ENDPOINT_URL_SQS;
  const sdk = lean(dynamoAt) && lean(sqsAt) ? undefined : sdkApis(config);
  return {
    dynamo: lean(dynamoAt) ? loopbackDynamoApi(dynamoAt) : sdk!.dynamo,
    sqs: lean(sqsAt) ? loopbackSqsApi(sqsAt) : sdk!.sqs,
  };
}
