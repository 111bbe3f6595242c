import type { Clock } from "../clock.ts";
import type { Queue } from "../queue/port.ts";
import type { EnvironmentStore } from "../release/environment.ts";
import type { ReleaseStore } from "../release/records.ts";
import type { DeliveryStore } from "../store/deliveries.ts";
import { overdueReleases } from "./queued-release.ts";
import type { RunStore } from "../store/port.ts";

export interface ReconcileDeps {
  store: RunStore;
  deliveries: DeliveryStore;
  /** Queued releases (rollbacks asked through the API) whose wake-up was lost. */
  releases?: ReleaseStore & EnvironmentStore;
  queue: Queue;
  clock: Clock;
  redriveAfterMs: number;
}

/**
 * Re-drives every unfinished run whose lease ran out (its message was lost, or the worker
 * holding it died), every pending delivery and every queued release that is overdue. Pushing the due time forward
 * first (one conditional write) keeps two reconcilers, or two ticks, from sending the same
 * one twice in a row; a duplicate would be harmless anyway.
 */
export async function reconcile(deps: ReconcileDeps, limit = 100): Promise<string[]> {
  const now = deps.clock.now();
  const [runs, deliveries] = await Promise.all([deps.store.expiredRuns(now, limit), deps.deliveries.dueDeliveries(now, limit)]);
  const sent: string[] = [];
  for (const stored of runs) {
    const saved = await deps.store.saveRun(stored.run, stored.version, { until: now + deps.redriveAfterMs });
    if (!saved) continue; // someone touched it meanwhile: it is alive
    await deps.queue.send({ runId: stored.run.id });
    sent.push(stored.run.id);
  }
  for (const stored of deliveries) {
    const saved = await deps.deliveries.saveDelivery(stored.delivery, stored.version, now + deps.redriveAfterMs);
    if (!saved) continue;
    await deps.queue.send({ deliveryId: stored.delivery.id });
    sent.push(stored.delivery.id);
  }
  for (const queued of deps.releases ? await overdueReleases(deps.releases, now - deps.redriveAfterMs) : []) {
    // Asked again now: the next tick leaves it alone for another grace period.
    await deps.releases!.putRelease({ ...queued, startedAt: now });
    await deps.queue.send({ env: queued.env, releaseId: queued.id });
    sent.push(queued.id);
  }
  return sent;
}
