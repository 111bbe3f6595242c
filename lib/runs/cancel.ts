import type { Clock } from "../clock.ts";
import { inFlight, transition } from "../pipeline/machine.ts";
import type { Run } from "../pipeline/run.ts";
import { TERMINAL } from "../pipeline/statuses.ts";
import type { Queue } from "../queue/port.ts";
import type { RunStore } from "../store/port.ts";
import type { RunObserver } from "./observer.ts";

export type CancelResult = { cancelled: Run } | { alreadyFinal: Run } | { missing: true };

/**
 * Records a cancel as one conditional write, and wakes the run. The worker holding the run
 * sees it between two looks at the job; when none holds it (it waits on a delayed wake-up),
 * the wake-up brings one. Either undoes the stage in flight: removes its job, withdraws its
 * release. A lost wake-up leaves that to the reconciler, once the run's lease expires.
 */
export async function cancelRun(store: RunStore, queue: Pick<Queue, "send">, clock: Clock, id: string, by: string, observer?: RunObserver): Promise<CancelResult> {
  for (;;) {
    const stored = await store.getRun(id);
    if (!stored) return { missing: true };
    if (TERMINAL.has(stored.run.status)) {
      // Cancelled before, with its stage still to undo: wake it again.
      if (inFlight(stored.run)) await queue.send({ runId: id });
      return { alreadyFinal: stored.run };
    }
    const { run } = transition(stored.run, { type: "stop", at: clock.now(), status: "cancelled", reason: `cancelled by ${by}` });
    const lease = stored.leaseUntil === undefined ? undefined : { until: stored.leaseUntil, ...(stored.leaseOwner ? { owner: stored.leaseOwner } : {}) };
    if (await store.saveRun(run, stored.version, lease)) {
      observer?.changed?.(stored.run, run);
      if (inFlight(run)) await queue.send({ runId: id });
      return { cancelled: run };
    }
  }
}
