import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type ChangeMessageVisibilityCommandInput,
  type ChangeMessageVisibilityCommandOutput,
  type CreateQueueCommandInput,
  type CreateQueueCommandOutput,
  type DeleteMessageCommandInput,
  type DeleteMessageCommandOutput,
  type GetQueueAttributesCommandInput,
  type GetQueueAttributesCommandOutput,
  type ReceiveMessageCommandInput,
  type ReceiveMessageCommandOutput,
  type SendMessageBatchCommandInput,
  type SendMessageBatchCommandOutput,
  type SQSClient,
} from "@aws-sdk/client-sqs";

type Out<T> = Omit<T, "$metadata">;

/** The SQS operations Hoist uses, in the SDK's shapes (the JSON protocol's wire format). */
export interface SqsApi {
  sendMessageBatch(input: SendMessageBatchCommandInput): Promise<Out<SendMessageBatchCommandOutput>>;
  receiveMessage(input: ReceiveMessageCommandInput): Promise<Out<ReceiveMessageCommandOutput>>;
  deleteMessage(input: DeleteMessageCommandInput): Promise<Out<DeleteMessageCommandOutput>>;
  changeMessageVisibility(input: ChangeMessageVisibilityCommandInput): Promise<Out<ChangeMessageVisibilityCommandOutput>>;
  getQueueAttributes(input: GetQueueAttributesCommandInput): Promise<Out<GetQueueAttributesCommandOutput>>;
  createQueue(input: CreateQueueCommandInput): Promise<Out<CreateQueueCommandOutput>>;
}

/** SQS through the AWS SDK: signing, credentials, retries and endpoints for AWS itself. */
export function sdkSqsApi(client: SQSClient): SqsApi {
  return {
    sendMessageBatch: (input) => client.send(new SendMessageBatchCommand(input)),
    receiveMessage: (input) => client.send(new ReceiveMessageCommand(input)),
    deleteMessage: (input) => client.send(new DeleteMessageCommand(input)),
    changeMessageVisibility: (input) => client.send(new ChangeMessageVisibilityCommand(input)),
    getQueueAttributes: (input) => client.send(new GetQueueAttributesCommand(input)),
    createQueue: (input) => client.send(new CreateQueueCommand(input)),
  };
}
