import type { Clock } from "../clock.ts";
import type { Queue } from "../queue/port.ts";
import type { PushEvent } from "../scm/port.ts";
import type { Delivery, DeliveryRun, DeliveryStatus, DeliveryStore } from "../store/deliveries.ts";
import { deliveryId } from "./ids.ts";

export interface IngestDeps {
  deliveries: DeliveryStore;
  queue: Queue;
  clock: Clock;
  /** A delivery nobody resolves within this time is re-driven by the reconciler. */
  redriveAfterMs: number;
}

/** What the webhook answers for a push: the delivery, and its runs once a worker has made them. */
export interface Accepted {
  delivery: { id: string; status: DeliveryStatus; runs?: DeliveryRun[]; reason?: string };
  /** True when this delivery had been recorded before: nothing was written or sent. */
  duplicate: boolean;
}

export type IngestResult = Accepted | { ignored: string };

/**
 * Takes a verified push: one conditional write records the delivery (a redelivery finds it
 * and writes nothing), one message asks a worker to resolve it. Nothing here calls the
 * provider: reading `.hoist.yml` can take as long as the provider likes, and GitHub and
 * GitLab give up on a webhook after 10 s (GitLab disables hooks that keep failing). The
 * worker reads the file and makes the runs (resolve-delivery.ts).
 */
export async function acceptPush(deps: IngestDeps, delivery: string, push: PushEvent): Promise<IngestResult> {
  if (push.deleted) return { ignored: `${push.ref} was deleted` };
  const now = deps.clock.now();
  const record: Delivery = {
    id: deliveryId(push.provider, delivery),
    delivery,
    push: { ...push },
    status: "pending",
    receivedAt: now,
    updatedAt: now,
    attempts: 0,
  };
  const outcome = await deps.deliveries.createDelivery(record, now + deps.redriveAfterMs);
  if (outcome === "exists") {
    const seen = (await deps.deliveries.getDelivery(record.id))?.delivery ?? record;
    return { delivery: summary(seen), duplicate: true };
  }
  // A crash between the write and the send loses nothing: the reconciler re-drives due deliveries.
  await deps.queue.send({ deliveryId: record.id });
  return { delivery: summary(record), duplicate: false };
}

function summary(d: Delivery): Accepted["delivery"] {
  return { id: d.id, status: d.status, ...(d.runs ? { runs: d.runs } : {}), ...(d.reason ? { reason: d.reason } : {}) };
}
