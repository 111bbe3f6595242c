import { loopbackJsonApi } from "../aws/loopback.ts";
import type { SqsApi } from "./sqs-api.ts";

/** SQS's JSON protocol straight to a server on this machine (the embedded local-aws-sqs). */
export function loopbackSqsApi(endpoint: string): SqsApi {
  const call = loopbackJsonApi(endpoint, "AmazonSQS");
  return {
    sendMessageBatch: call("SendMessageBatch"),
    receiveMessage: call("ReceiveMessage"),
    deleteMessage: call("DeleteMessage"),
    changeMessageVisibility: call("ChangeMessageVisibility"),
    getQueueAttributes: call("GetQueueAttributes"),
    createQueue: call("CreateQueue"),
  };
}
