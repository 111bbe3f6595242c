import type { Clock } from "../clock.ts";
import { classify, messageOf, NotFoundError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Queue } from "../queue/port.ts";
import type { EnvironmentStore } from "../release/environment.ts";
import type { ReleaseRecord } from "../release/records.ts";
import { newReleaseId, release, rollbackRequest } from "../release/release.ts";
import type { ReleaseSpec } from "../release/spec.ts";
import type { DeployDeps } from "./deploy.ts";

export interface RequestDeps {
  store: DeployDeps["store"];
  queue: Pick<Queue, "send">;
  clock: Clock;
}

/**
 * Asks for a rollback without waiting for it: the release is recorded `queued` (its id is the
 * answer) and a wake-up sent; a worker runs it (runQueuedRelease). A lost wake-up is sent again
 * by the reconciler. The checks a request can fail at once (an unknown target, no earlier
 * release) are made here, before anything is written.
 */
export async function requestRollback(deps: RequestDeps, env: string, by: string, to?: string): Promise<ReleaseRecord> {
  const req = await rollbackRequest(deps.store, env, by, to);
  const spec = req.spec;
  const record: ReleaseRecord = {
    env,
    id: newReleaseId(),
    image: req.image,
    service: spec.service,
    strategy: spec.hoist.strategy,
    trigger: req.trigger,
    status: "queued",
    startedAt: deps.clock.now(),
    instances: [],
    spec,
  };
  await deps.store.putRelease(record);
  await deps.queue.send({ env, releaseId: record.id });
  return record;
}

/**
 * A worker's part: runs a queued release to its end under its own id (a second wake-up of the
 * same release resumes or finds it done). An outage or a busy environment comes back through
 * the queue; anything else ends the release `failed` with the reason.
 */
export async function runQueuedRelease(deps: DeployDeps & { log: Logger }, env: string, id: string): Promise<ReleaseRecord | undefined> {
  const queued = await deps.store.getRelease(env, id);
  if (!queued || (queued.status !== "queued" && queued.status !== "running")) return queued;
  const log = deps.log.child({ env, release: id });
  try {
    const environment = await deps.store.getEnvironment(env);
    if (!environment) throw new NotFoundError(`environment ${env} is gone`);
    const ctx = deps.contextFor(environment, (line) => log.info(line));
    return await release(deps, ctx, { id, image: queued.image, spec: queued.spec as ReleaseSpec, trigger: queued.trigger });
  } catch (err) {
    if (classify(err).retryable) throw err;
    const failed: ReleaseRecord = { ...queued, status: "failed", finishedAt: deps.now(), error: messageOf(err) };
    await deps.store.putRelease(failed);
    log.warn({ error: failed.error }, "queued release failed");
    return failed;
  }
}

/** Queued releases whose wake-up is overdue (asked for before `before`): the reconciler's list. */
export async function overdueReleases(store: DeployDeps["store"] & EnvironmentStore, before: number): Promise<ReleaseRecord[]> {
  const envs = await store.listEnvironments();
  const lists = await Promise.all(envs.map((e) => store.listReleases(e.name, 20)));
  return lists.flat().filter((r) => r.status === "queued" && r.startedAt < before);
}
