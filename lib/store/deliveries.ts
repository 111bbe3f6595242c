import * as z from "../zod-mini.ts";
import { CommitRef, Provider } from "../pipeline/refs.ts";
import { RunStatus } from "../pipeline/statuses.ts";

/**
 * A verified push delivery, recorded by the webhook before anything reads the repository: the
 * webhook answers at once, and a worker later reads `.hoist.yml` at the pushed commit and turns
 * the delivery into its runs. The record is the dedupe marker (a redelivery finds it) and shows
 * the delivery's progress (`GET /api/deliveries/:id`) while the provider is slow.
 */

export const DELIVERY_STATUSES = ["pending", "resolved", "ignored", "failed"] as const;
export const DeliveryStatus = z.enum(DELIVERY_STATUSES);
export type DeliveryStatus = z.infer<typeof DeliveryStatus>;

/** The push as the webhook understood it: everything a worker needs to make its runs. */
export const DeliveredPush = z.extend(CommitRef, {
  provider: Provider,
  deleted: z.boolean(),
  actor: z.optional(z.string()),
  actorEmail: z.optional(z.string()),
});

export const DeliveryRun = z.object({ id: z.string(), pipeline: z.string(), status: RunStatus, error: z.optional(z.string()) });
export type DeliveryRun = z.infer<typeof DeliveryRun>;

export const Delivery = z.object({
  /** Hoist's id for the delivery (derived from the provider and its delivery id). */
  id: z.string(),
  /** The provider's own delivery id (X-GitHub-Delivery, GitLab's Idempotency-Key). */
  delivery: z.string(),
  push: DeliveredPush,
  status: DeliveryStatus,
  receivedAt: z.number(),
  updatedAt: z.number(),
  /** Reads of the repository tried so far, and the last one's error while it keeps failing. */
  attempts: z.number().check(z.int(), z.nonnegative()),
  lastError: z.optional(z.string()),
  /** When the next read is due, while pending after a failed one. */
  retryAt: z.optional(z.number()),
  /** The runs the delivery made, once resolved. */
  runs: z.optional(z.array(DeliveryRun)),
  /** Why it was ignored or failed. */
  reason: z.optional(z.string()),
});
export type Delivery = z.infer<typeof Delivery>;

export interface StoredDelivery {
  delivery: Delivery;
  version: number;
}

export interface DeliveryStore {
  /**
   * Records a new delivery, due for the reconciler at `dueAt` unless resolved before; "exists"
   * when this delivery was recorded before (a redelivery), with nothing written.
   */
  createDelivery(delivery: Delivery, dueAt: number): Promise<"created" | "exists">;
  getDelivery(id: string): Promise<StoredDelivery | undefined>;
  /** Saves if the stored version is still `expected`; a pending one is due again at `dueAt`. Undefined on a conflict. */
  saveDelivery(delivery: Delivery, expected: number, dueAt?: number): Promise<StoredDelivery | undefined>;
  /** Pending deliveries due before `now`: their wake-up was lost, or the worker died. */
  dueDeliveries(now: number, limit: number): Promise<StoredDelivery[]>;
}
