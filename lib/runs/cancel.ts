import type { Clock } from "../clock.ts";
import { transition } from "../pipeline/machine.ts";
import { TERMINAL, type Run } from "../pipeline/run.ts";
import type { RunStore } from "../store/port.ts";

export type CancelResult = { cancelled: Run } | { alreadyFinal: Run } | { missing: true };

/**
 * Records a cancel as one conditional write. The worker holding the run sees it between
 * two looks at the job, stops the job and lets the run end `cancelled`.
 */
export async function cancelRun(store: RunStore, clock: Clock, id: string, by: string): Promise<CancelResult> {
  for (;;) {
    const stored = await store.getRun(id);
    if (!stored) return { missing: true };
    if (TERMINAL.has(stored.run.status)) return { alreadyFinal: stored.run };
    const { run } = transition(stored.run, { type: "stop", at: clock.now(), status: "cancelled", reason: `cancelled by ${by}` });
    const lease = stored.leaseUntil === undefined ? undefined : { until: stored.leaseUntil, ...(stored.leaseOwner ? { owner: stored.leaseOwner } : {}) };
    if (await store.saveRun(run, stored.version, lease)) return { cancelled: run };
  }
}
