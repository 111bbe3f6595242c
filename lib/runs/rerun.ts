import type { Clock } from "../clock.ts";
import { ConflictError } from "../errors.ts";
import { rerunRefusal, transition } from "../pipeline/machine.ts";
import type { Run } from "../pipeline/run.ts";
import { growthRoom, jsonBytes, RUN_BUDGET_BYTES } from "../pipeline/size.ts";
import type { Queue } from "../queue/port.ts";
import type { RunStore } from "../store/port.ts";
import type { RunObserver } from "./observer.ts";

/**
 * Runs a failed or cancelled run again from stage `from` (default: the first that did not
 * succeed), in the same record: the earlier attempt is kept in its history, the image it
 * built is reused (a build stage finds `<image>:<sha>` and does not build again), and its
 * stages before `from` keep their results.
 */
export async function rerunRun(deps: { store: RunStore; queue: Pick<Queue, "send">; clock: Clock; observer?: RunObserver }, id: string, by: string, from?: number | string): Promise<Run | undefined> {
  for (;;) {
    const stored = await deps.store.getRun(id);
    if (!stored) return undefined;
    const { run } = stored;
    const index = stageIndex(run, from);
    const refused = rerunRefusal(run, index);
    if (refused) throw new ConflictError(refused);
    const next = transition(run, { type: "rerun", at: deps.clock.now(), by, from: index, attempt: (run.attempts?.length ?? 0) + 1 });
    // The stages that go again must still have room in the record for what they will add.
    const rerunStages = run.stages.length - index;
    if (jsonBytes(next.run) + growthRoom(rerunStages, rerunStages, rerunStages) > RUN_BUDGET_BYTES)
      throw new ConflictError(`run ${id} has no room left in its record for another attempt: trigger a new run instead`);
    if (!(await deps.store.saveRun(next.run, stored.version, { until: deps.clock.now() }))) continue;
    deps.observer?.changed?.(run, next.run);
    await deps.queue.send({ runId: id });
    return next.run;
  }
}

function stageIndex(run: Run, from: number | string | undefined): number {
  if (from === undefined) return run.stages.findIndex((s) => s.status !== "succeeded");
  if (typeof from === "number") return from;
  const byName = run.stages.findIndex((s) => s.name === from);
  if (byName < 0) throw new ConflictError(`run ${run.id} has no stage "${from}" (stages: ${run.stages.map((s) => s.name).join(", ")})`);
  return byName;
}
