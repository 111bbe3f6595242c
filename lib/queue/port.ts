import * as z from "zod";

/**
 * The only messages Hoist sends: "look at run R", "resolve delivery D" (read its `.hoist.yml`,
 * make its runs), "run queued release R of environment E" (a rollback asked through the API)
 * and "settle this Slack click" (its verified body: record the decision, update the message).
 * The table holds everything else.
 */
export const WakeUp = z.union([
  z.object({ runId: z.string().min(1).max(128) }).strict(),
  z.object({ deliveryId: z.string().min(1).max(128) }).strict(),
  z.object({ env: z.string().min(1).max(128), releaseId: z.string().min(1).max(128) }).strict(),
  // The route takes 64 KiB at most; SQS takes a message of 256 KiB.
  z.object({ slackClick: z.string().min(1).max(128 * 1024) }).strict(),
]);
export type WakeUp = z.infer<typeof WakeUp>;

export interface Queue {
  /** Sends a wake-up, delivered after `delaySec` (0-900, SQS's limit). */
  send(message: WakeUp, delaySec?: number): Promise<void>;
}

export interface Received {
  body: string;
  receipt: string;
  receiveCount: number;
}

/** The consuming side, for the local runtime's poller (on AWS, Lambda polls for us). */
export interface QueueConsumer {
  receive(max: number, waitSec: number): Promise<Received[]>;
  ack(receipt: string): Promise<void>;
  /** Makes a failed message visible again after `delaySec`. */
  retryLater(receipt: string, delaySec: number): Promise<void>;
}
