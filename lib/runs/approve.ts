import type { Clock } from "../clock.ts";
import { alreadyDecided, gateState, gateSummary, type DecideResult, type DecisionRequest } from "../pipeline/approval.ts";
import { transition } from "../pipeline/machine.ts";
import type { Queue } from "../queue/port.ts";
import type { RunStore } from "../store/port.ts";
import type { RunObserver } from "./observer.ts";

/**
 * Records one person's decision at a run's approval gate: a conditional write of the run (two
 * clicks at once make one decision: the second finds the first), then a wake-up so a worker
 * starts the stage or fails the run. A refused decision (not an approver, the pusher where
 * self-approval is off) is recorded too, with why, and wakes nothing.
 */
export async function decide(deps: { store: RunStore; queue: Pick<Queue, "send">; clock: Clock; observer?: RunObserver }, req: DecisionRequest): Promise<DecideResult> {
  for (;;) {
    const stored = await deps.store.getRun(req.runId);
    if (!stored) return { outcome: "missing" };
    const { run } = stored;
    const stage = req.stage ?? run.stages.findIndex((s) => s.status === "waiting");
    const waiting = run.stages[stage];
    if (!waiting || waiting.status !== "waiting" || !waiting.gate)
      return { outcome: "not-waiting", reason: `run ${run.id} is ${run.status}${waiting ? ` and stage ${waiting.name} is ${waiting.status}` : ""}: nothing waits for approval` };
    const event = {
      type: "decided" as const,
      stage,
      at: deps.clock.now(),
      by: req.by,
      identities: req.identities ?? [],
      via: req.via,
      approve: req.approve,
      ...(req.reason ? { reason: req.reason } : {}),
    };
    const next = transition(run, event);
    if (!next.changed) {
      if (alreadyDecided(waiting.gate, event)) return { outcome: "duplicate", stage, summary: gateSummary(waiting.gate, gateState(waiting.gate) ?? "waiting") };
      // A refusal the gate has no room left to record (it keeps MAX_DECISIONS).
      return { outcome: "refused", stage, reason: `this decision does not count here, and the gate keeps no more refusals: ${gateSummary(waiting.gate, "waiting")}` };
    }
    // A gate just decided is the reconciler's at once: a lost wake-up then costs a grace period,
    // not the wait until the gate's deadline that the parked run's lease runs to.
    const decided = gateState(next.run.stages[stage]?.gate) !== "waiting";
    const lease = decided
      ? { until: deps.clock.now() }
      : stored.leaseUntil === undefined
        ? undefined
        : { until: stored.leaseUntil, ...(stored.leaseOwner ? { owner: stored.leaseOwner } : {}) };
    if (!(await deps.store.saveRun(next.run, stored.version, lease))) continue;
    deps.observer?.changed?.(run, next.run);
    const gate = next.run.stages[stage]?.gate;
    const decision = gate?.decisions.at(-1);
    if (!gate || decision?.refused) return { outcome: "refused", stage, reason: decision?.refused ?? "not recorded" };
    const state = gateState(gate) ?? "waiting";
    if (state !== "waiting") await deps.queue.send({ runId: run.id });
    return { outcome: "accepted", stage, waiting: state === "waiting", summary: gateSummary(gate, state) };
  }
}
