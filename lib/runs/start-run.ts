import type { Clock } from "../clock.ts";
import { NotFoundError, PermanentError } from "../errors.ts";
import { HOIST_FILE } from "../pipeline/config.ts";
import { derive } from "../pipeline/machine.ts";
import { resolveStages } from "../pipeline/resolve.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import type { Run, Trigger } from "../pipeline/run.ts";
import type { Pipeline } from "../pipeline/schema.ts";
import type { Queue } from "../queue/port.ts";
import type { RunStore } from "../store/port.ts";
import type { ConfigCache } from "./config-cache.ts";
import type { RunObserver } from "./observer.ts";
import { supersede } from "./supersede.ts";

export interface StartDeps {
  store: RunStore;
  queue: Pick<Queue, "send">;
  clock: Clock;
  configs: ConfigCache;
  registry?: string;
  redriveAfterMs: number;
  observer?: RunObserver;
}

export interface StartRequest {
  /** Derived by the caller from what makes the run unique (a schedule's slot), so a second start creates nothing. */
  id: string;
  repo: RepoRef;
  ref: string;
  branch?: string;
  tag?: string;
  sha: string;
  pipeline: string;
  trigger: Extract<Trigger, { type: "manual" | "schedule" }>;
}

/**
 * Starts one pipeline of `.hoist.yml` at a commit, for a trigger other than a push (a person's,
 * a schedule's): the pipeline must say it runs on that trigger. One conditional write creates
 * the run (an existing one with the id is left as it is), then one message starts it.
 */
export async function startPipelineRun(deps: StartDeps, req: StartRequest): Promise<{ run: Run; created: boolean }> {
  const config = await deps.configs.get(req.repo, req.sha);
  const at = `${req.repo.fullName} at ${req.sha.slice(0, 12)}`;
  if (!config) throw new NotFoundError(`no ${HOIST_FILE} in ${at}`);
  if (!config.ok) throw new PermanentError(config.error, { status: 422 });
  const pipeline = config.file.pipelines[req.pipeline];
  if (!pipeline) throw new NotFoundError(`${HOIST_FILE} in ${at} has no pipeline "${req.pipeline}" (it has ${Object.keys(config.file.pipelines).join(", ")})`);
  const refused = triggerRefusal(pipeline, req);
  if (refused) throw new PermanentError(refused, { status: 403 });
  const resolved = resolveStages(pipeline, { repoName: req.repo.fullName, registry: deps.registry });
  if (!resolved.ok) throw new PermanentError(resolved.error, { status: 422 });
  const now = deps.clock.now();
  const params = req.trigger.type === "manual" ? (req.trigger.params ?? {}) : {};
  const run = derive({
    id: req.id,
    repo: req.repo,
    ref: req.ref,
    ...(req.branch !== undefined ? { branch: req.branch } : {}),
    ...(req.tag !== undefined ? { tag: req.tag } : {}),
    sha: req.sha,
    pipeline: req.pipeline,
    trigger: req.trigger,
    status: "queued",
    // A manual run's parameters reach its tests as environment variables, over the file's own.
    stages: resolved.stages.map(({ name, spec }) => ({ name, spec: spec.kind === "test" ? { ...spec, env: { ...spec.env, ...params } } : spec, status: "pending" as const })),
    createdAt: now,
    updatedAt: now,
  });
  const created = (await deps.store.createRun(run, { until: now + deps.redriveAfterMs })) === "created";
  if (created) {
    deps.observer?.changed?.(undefined, run);
    await deps.queue.send({ runId: run.id });
    if (pipeline.concurrency?.cancel_in_progress) await supersede(deps, run);
  }
  const stored = created ? run : ((await deps.store.getRun(run.id))?.run ?? run);
  return { run: stored, created };
}

function triggerRefusal(pipeline: Pipeline, req: StartRequest): string | undefined {
  if (req.trigger.type === "manual" && !pipeline.on.manual)
    return `pipeline "${req.pipeline}" does not run by hand: add \`manual: true\` under its \`on:\` in ${HOIST_FILE}`;
  if (req.trigger.type === "schedule" && !pipeline.on.schedule?.some((s) => s.cron === (req.trigger as { cron: string }).cron))
    return `pipeline "${req.pipeline}" has no schedule "${req.trigger.cron}" any more`;
  return undefined;
}
