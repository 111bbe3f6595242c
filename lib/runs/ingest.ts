import { RetryableError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import { HOIST_FILE } from "../pipeline/config.ts";
import { derive } from "../pipeline/machine.ts";
import { resolveStages } from "../pipeline/resolve.ts";
import type { Run, RunStatus } from "../pipeline/run.ts";
import { matchPushPipelines } from "../pipeline/triggers.ts";
import type { Queue } from "../queue/port.ts";
import type { PushEvent } from "../scm/port.ts";
import type { RunStore } from "../store/port.ts";
import type { ConfigCache } from "./config-cache.ts";
import { deliveryRunId } from "./ids.ts";

export interface IngestDeps {
  store: RunStore;
  queue: Queue;
  configs: ConfigCache;
  clock: Clock;
  registry?: string;
  /** A queued run nobody picks up within this time is re-driven by the reconciler. */
  redriveAfterMs: number;
}

export interface CreatedRun {
  id: string;
  pipeline: string;
  status: RunStatus;
  /** True when this delivery had already created the run: nothing was written or sent. */
  duplicate: boolean;
  error?: string;
}

export type IngestResult = { runs: CreatedRun[] } | { ignored: string };

export class SourceUnavailableError extends RetryableError {
  override name = "SourceUnavailableError";
}

/**
 * Turns a verified push into runs: one per pipeline whose trigger matches, each created by
 * one conditional write keyed by the delivery (so redeliveries create nothing) and then
 * enqueued. A `.hoist.yml` that does not parse yields one failed run carrying the error.
 */
export async function ingestPush(deps: IngestDeps, delivery: string, push: PushEvent): Promise<IngestResult> {
  if (push.deleted) return { ignored: `${push.ref} was deleted` };
  let config;
  try {
    config = await deps.configs.get(push.repo, push.sha);
  } catch (err) {
    throw new SourceUnavailableError(`could not read ${HOIST_FILE} of ${push.repo.fullName} at ${push.sha}: ${(err as Error).message}`, { cause: err });
  }
  if (!config) return { ignored: `no ${HOIST_FILE} in ${push.repo.fullName} at ${push.sha.slice(0, 12)}` };

  const now = deps.clock.now();
  const base = (pipeline: string, id: string): Run => ({
    id,
    repo: push.repo,
    ref: push.ref,
    ...(push.branch !== undefined ? { branch: push.branch } : {}),
    ...(push.tag !== undefined ? { tag: push.tag } : {}),
    sha: push.sha,
    pipeline,
    trigger: { type: "push", delivery, ...(push.actor ? { actor: push.actor } : {}) },
    status: "queued",
    stages: [],
    createdAt: now,
    updatedAt: now,
  });

  const drafts: Run[] = [];
  if (!config.ok) {
    const run = base(HOIST_FILE, deliveryRunId(push.provider, delivery, HOIST_FILE));
    drafts.push({ ...run, stopped: { at: now, status: "failed", reason: config.error } });
  } else {
    const names = matchPushPipelines(config.file, push);
    if (names.length === 0) return { ignored: `no pipeline in ${HOIST_FILE} runs on ${push.ref}` };
    for (const name of names) {
      const run = base(name, deliveryRunId(push.provider, delivery, name));
      const resolved = resolveStages(config.file.pipelines[name]!, { repoName: push.repo.fullName, registry: deps.registry });
      drafts.push(
        resolved.ok
          ? { ...run, stages: resolved.stages.map((s) => ({ ...s, status: "pending" as const })) }
          : { ...run, stopped: { at: now, status: "failed", reason: resolved.error } },
      );
    }
  }

  const runs = await Promise.all(
    drafts.map(async (draft): Promise<CreatedRun> => {
      const run = derive(draft);
      const outcome = await deps.store.createRun(run, { until: now + deps.redriveAfterMs });
      const duplicate = outcome === "exists";
      // A crash between the write and the send loses nothing: the reconciler re-drives queued runs.
      if (!duplicate && run.status === "queued") await deps.queue.send({ runId: run.id });
      return { id: run.id, pipeline: run.pipeline, status: run.status, duplicate, ...(run.error ? { error: run.error } : {}) };
    }),
  );
  return { runs };
}
