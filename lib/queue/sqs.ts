import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { Queue, QueueConsumer, Received, WakeUp } from "./port.ts";

interface Pending {
  body: string;
  delay: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Queue on SQS (a standard queue: FIFO queues cannot delay single messages, and every
 * handler is idempotent, so duplicates are harmless). Sends made in the same tick are
 * batched into SendMessageBatch calls of up to ten: under a burst of webhooks that is a
 * tenth of the requests, and each caller still learns whether its own message was taken.
 */
export class SqsQueue implements Queue, QueueConsumer {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly client: SQSClient,
    readonly url: string,
  ) {}

  send(message: WakeUp, delaySec = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ body: JSON.stringify(message), delay: Math.max(0, Math.min(900, Math.round(delaySec))), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const all = this.pending;
    this.pending = [];
    const batches: Pending[][] = [];
    for (let i = 0; i < all.length; i += 10) batches.push(all.slice(i, i + 10));
    await Promise.all(batches.map((batch) => this.sendBatch(batch)));
  }

  /** Calls `listener` after each batch this process sends (the local poller wakes on it). */
  onSend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async sendBatch(batch: Pending[]): Promise<void> {
    try {
      const out = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.url,
          Entries: batch.map((p, i) => ({ Id: String(i), MessageBody: p.body, DelaySeconds: p.delay })),
        }),
      );
      const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
      batch.forEach((p, i) => {
        const f = failed.get(String(i));
        if (f) p.reject(new Error(`SQS refused a message: ${f.Code ?? "error"} ${f.Message ?? ""}`.trim()));
        else p.resolve();
      });
      for (const listener of this.listeners) listener();
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  async receive(max: number, waitSec: number): Promise<Received[]> {
    const out = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.url,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: waitSec,
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
    );
    return (out.Messages ?? []).map((m) => ({
      body: m.Body ?? "",
      receipt: m.ReceiptHandle ?? "",
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
    }));
  }

  async ack(receipt: string): Promise<void> {
    await this.client.send(new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: receipt }));
  }

  async retryLater(receipt: string, delaySec: number): Promise<void> {
    await this.client.send(
      new ChangeMessageVisibilityCommand({ QueueUrl: this.url, ReceiptHandle: receipt, VisibilityTimeout: Math.round(delaySec) }),
    );
  }

  /** Approximate number of messages waiting and in flight (tests and the CLI's status line). */
  async depth(): Promise<number> {
    const out = await this.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
      }),
    );
    const a = out.Attributes ?? {};
    return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
  }
}

/**
 * Creates the queue and its dead-letter queue when missing (local runtime and tests; on AWS
 * the stack does). A message that fails `maxReceiveCount` times moves to the DLQ.
 */
export async function ensureQueue(client: SQSClient, name: string, maxReceiveCount = 5): Promise<string> {
  const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqAttrs = await client.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }));
  const out = await client.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: "300",
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqAttrs.Attributes?.QueueArn, maxReceiveCount }),
      },
    }),
  );
  if (!out.QueueUrl) throw new Error(`SQS did not return a URL for queue ${name}`);
  return out.QueueUrl;
}
