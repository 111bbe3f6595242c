import type { Clock } from "../clock.ts";
import type { Run } from "../pipeline/run.ts";
import type { Queue } from "../queue/port.ts";
import type { RunStore } from "../store/port.ts";
import { cancelRun } from "./cancel.ts";
import type { RunObserver } from "./observer.ts";

/**
 * A newer run of a pipeline on a branch cancels the older ones still going (the pipeline's
 * `concurrency: { cancel_in_progress: true }`), each as `hoist cancel` would: the stage in
 * flight is undone by its worker. Older means created earlier; a run is never cancelled by one
 * of another pipeline, branch or repository.
 */
export async function supersede(deps: { store: RunStore; queue: Pick<Queue, "send">; clock: Clock; observer?: RunObserver }, newer: Run): Promise<string[]> {
  if (newer.branch === undefined) return [];
  const repo = `${newer.repo.provider}:${newer.repo.fullName}`;
  const { runs } = await deps.store.listRuns({ repo, branch: newer.branch, limit: 200 });
  const older = runs.filter(
    (r) => r.id !== newer.id && r.pipeline === newer.pipeline && r.createdAt < newer.createdAt && (r.status === "queued" || r.status === "running" || r.status === "waiting"),
  );
  const cancelled: string[] = [];
  for (const run of older) {
    const result = await cancelRun(deps.store, deps.queue, deps.clock, run.id, `a newer run (${newer.id}, ${newer.sha.slice(0, 12)}) of ${newer.pipeline} on ${newer.branch}`, deps.observer);
    if ("cancelled" in result) cancelled.push(run.id);
  }
  return cancelled;
}
