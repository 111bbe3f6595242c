import type { Clock } from "../clock.ts";
import type { Queue } from "../queue/port.ts";
import type { RunStore } from "../store/port.ts";

export interface ReconcileDeps {
  store: RunStore;
  queue: Queue;
  clock: Clock;
  redriveAfterMs: number;
}

/**
 * Re-drives every unfinished run whose lease ran out: its message was lost, or the worker
 * holding it died. Pushing the lease forward first (one conditional write) keeps two
 * reconcilers, or two ticks, from sending the same run twice in a row; a duplicate would
 * be harmless anyway.
 */
export async function reconcile(deps: ReconcileDeps, limit = 100): Promise<string[]> {
  const now = deps.clock.now();
  const expired = await deps.store.expiredRuns(now, limit);
  const sent: string[] = [];
  for (const stored of expired) {
    const saved = await deps.store.saveRun(stored.run, stored.version, { until: now + deps.redriveAfterMs });
    if (!saved) continue; // someone touched it meanwhile: it is alive
    await deps.queue.send({ runId: stored.run.id });
    sent.push(stored.run.id);
  }
  return sent;
}
