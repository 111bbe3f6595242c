import type { SqsApi } from "./sqs-api.ts";
import type { Queue, QueueConsumer, Received, WakeUp } from "./port.ts";

interface Pending {
  body: string;
  delay: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * After the other sends of this turn: setImmediate on Node, a zero timeout where there is none
 * (the webhook on Workers, functions/edge.ts).
 */
const nextTurn: (fn: () => void) => void = typeof setImmediate === "function" ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0);

/**
 * Queue on SQS (a standard queue: FIFO queues cannot delay single messages, and every
 * handler is idempotent, so duplicates are harmless). Sends are group-committed: while one
 * round of SendMessageBatch calls is in flight the next sends gather, then go out together
 * in batches of up to ten. Under a burst of webhooks that is a fraction of the requests (and
 * of their CPU); alone, a send waits for nothing. Each caller still learns whether its own
 * message was taken.
 */
export class SqsQueue implements Queue, QueueConsumer {
  private pending: Pending[] = [];
  /** A flush is scheduled or in flight; sends made meanwhile wait for the next round. */
  private busy = false;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly api: SqsApi,
    readonly url: string,
  ) {}

  send(message: WakeUp, delaySec = 0): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ body: JSON.stringify(message), delay: Math.max(0, Math.min(900, Math.round(delaySec))), resolve, reject });
      if (!this.busy) {
        this.busy = true;
        nextTurn(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const all = this.pending;
      this.pending = [];
      const batches: Pending[][] = [];
      for (let i = 0; i < all.length; i += 10) batches.push(all.slice(i, i + 10));
      await Promise.all(batches.map((batch) => this.sendBatch(batch)));
    }
    this.busy = false;
  }

  /** Calls `listener` after each batch this process sends (the local poller wakes on it). */
  onSend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async sendBatch(batch: Pending[]): Promise<void> {
    try {
      const out = await this.api.sendMessageBatch({
        QueueUrl: this.url,
        Entries: batch.map((p, i) => ({ Id: String(i), MessageBody: p.body, DelaySeconds: p.delay })),
      });
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
    const out = await this.api.receiveMessage({
      QueueUrl: this.url,
      MaxNumberOfMessages: Math.min(10, max),
      WaitTimeSeconds: waitSec,
      MessageSystemAttributeNames: ["ApproximateReceiveCount"],
    });
    return (out.Messages ?? []).map((m) => ({
      body: m.Body ?? "",
      receipt: m.ReceiptHandle ?? "",
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
    }));
  }

  async ack(receipt: string): Promise<void> {
    await this.api.deleteMessage({ QueueUrl: this.url, ReceiptHandle: receipt });
  }

  async retryLater(receipt: string, delaySec: number): Promise<void> {
    await this.api.changeMessageVisibility({ QueueUrl: this.url, ReceiptHandle: receipt, VisibilityTimeout: Math.round(delaySec) });
  }

  /** Approximate number of messages waiting and in flight (tests and the CLI's status line). */
  async depth(): Promise<number> {
    const out = await this.api.getQueueAttributes({
      QueueUrl: this.url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
    });
    const a = out.Attributes ?? {};
    return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
  }
}

/**
 * Creates the queue and its dead-letter queue when missing (local runtime and tests; on AWS
 * the stack does). A message that fails `maxReceiveCount` times moves to the DLQ.
 */
export async function ensureQueue(api: SqsApi, name: string, maxReceiveCount = 5): Promise<string> {
  const dlq = await api.createQueue({ QueueName: `${name}-dlq` });
  const dlqAttrs = await api.getQueueAttributes({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] });
  const out = await api.createQueue({
    QueueName: name,
    Attributes: {
      VisibilityTimeout: "300",
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqAttrs.Attributes?.QueueArn, maxReceiveCount }),
    },
  });
  if (!out.QueueUrl) throw new Error(`SQS did not return a URL for queue ${name}`);
  return out.QueueUrl;
}
