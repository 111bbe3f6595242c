import type { Clock } from "../clock.ts";
import { classify, messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import { HOIST_FILE, type ParsedConfig } from "../pipeline/config.ts";
import { derive } from "../pipeline/machine.ts";
import { resolveStages } from "../pipeline/resolve.ts";
import type { Run } from "../pipeline/run.ts";
import { matchPushPipelines } from "../pipeline/triggers.ts";
import type { Queue } from "../queue/port.ts";
import type { Delivery, DeliveryRun, DeliveryStore, StoredDelivery } from "../store/deliveries.ts";
import type { RunStore } from "../store/port.ts";
import type { ScheduleStore } from "../store/schedules.ts";
import type { ConfigCache } from "./config-cache.ts";
import { deliveryRunId } from "./ids.ts";
import type { RunObserver } from "./observer.ts";
import { registerSchedules } from "./register-schedules.ts";
import { supersede } from "./supersede.ts";

export interface ResolveDeps {
  deliveries: DeliveryStore;
  store: RunStore;
  queue: Queue;
  configs: ConfigCache;
  clock: Clock;
  log: Logger;
  registry?: string;
  redriveAfterMs: number;
  /** How long a provider that keeps failing is tried before the delivery fails. */
  patienceMs: number;
  /** Told of each run made (commit statuses); never awaited. */
  observer?: RunObserver;
  /** Where `on.schedule` entries are registered, for the scheduler. */
  schedules?: ScheduleStore;
}

/** First wait after a failed read; it doubles with each failure, up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 2_000;
const MAX_BACKOFF_MS = 5 * 60_000;

export type ResolveResult = "resolved" | "retrying" | "missing" | "already-done";

/**
 * Turns a recorded delivery into its runs: reads `.hoist.yml` at the pushed commit (as long
 * as the provider takes, off any webhook request), then one conditional write per matching
 * pipeline creates its run (ids derived from the delivery, so a second resolution of the same
 * delivery creates nothing) and one message starts it. A provider outage is retried with
 * backoff through delayed messages, visible on the delivery (attempts, last error), until
 * `patienceMs` has passed; then the delivery fails, and so does a run named after the file,
 * so the failure shows where runs are listed. Safe under duplicate and concurrent wake-ups.
 */
export async function resolveDelivery(deps: ResolveDeps, id: string): Promise<ResolveResult> {
  const stored = await deps.deliveries.getDelivery(id);
  if (!stored) return "missing";
  if (stored.delivery.status !== "pending") return "already-done";
  const { delivery } = stored;
  const log = deps.log.child({ delivery: id });
  let config: ParsedConfig | undefined;
  try {
    config = await deps.configs.get(delivery.push.repo, delivery.push.sha);
  } catch (err) {
    return failedRead(deps, stored, err, log);
  }
  // The branch's schedules become what its new head's file declares (a broken file changes none).
  const { push } = delivery;
  if (deps.schedules && push.branch !== undefined && config?.ok !== false)
    await registerSchedules(deps.schedules, { repo: push.repo, branch: push.branch, sha: push.sha, receivedAt: delivery.receivedAt }, config?.file);
  const outcome = config === undefined ? { ignored: `no ${HOIST_FILE} in ${delivery.push.repo.fullName} at ${delivery.push.sha.slice(0, 12)}` } : await makeRuns(deps, delivery, config);
  const now = deps.clock.now();
  const done: Delivery =
    "ignored" in outcome
      ? { ...delivery, status: "ignored", reason: outcome.ignored, updatedAt: now, attempts: delivery.attempts + 1 }
      : { ...delivery, status: "resolved", runs: outcome.runs, updatedAt: now, attempts: delivery.attempts + 1 };
  await settle(deps, stored, done);
  log.info({ status: done.status, runs: done.runs?.map((r) => r.id), reason: done.reason }, "delivery resolved");
  return "resolved";
}

/** A read that failed: retried later with backoff while the error is retryable and patience lasts. */
async function failedRead(deps: ResolveDeps, stored: StoredDelivery, err: unknown, log: Logger): Promise<ResolveResult> {
  const { delivery } = stored;
  const e = classify(err);
  const now = deps.clock.now();
  const attempts = delivery.attempts + 1;
  const what = `could not read ${HOIST_FILE} of ${delivery.push.repo.fullName} at ${delivery.push.sha.slice(0, 12)}: ${messageOf(err)}`;
  const waited = now - delivery.receivedAt;
  if (e.retryable && waited < deps.patienceMs) {
    const backoff = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (attempts - 1));
    const retryAt = now + Math.max(backoff, "retryAfterMs" in e && typeof e.retryAfterMs === "number" ? e.retryAfterMs : 0);
    const next: Delivery = { ...delivery, attempts, lastError: what, retryAt, updatedAt: now };
    // Due for the reconciler a grace period after the retry, in case the delayed message is lost.
    const saved = await deps.deliveries.saveDelivery(next, stored.version, retryAt + deps.redriveAfterMs);
    if (saved) await deps.queue.send({ deliveryId: delivery.id }, Math.min(900, Math.ceil((retryAt - now) / 1000)));
    log.warn({ attempts, retryAt: new Date(retryAt).toISOString(), err: messageOf(err) }, "reading the pipeline file failed; retrying later");
    return "retrying";
  }
  const reason = e.retryable ? `${what} (tried ${attempts} times over ${Math.round(waited / 1000)} s; redeliver the webhook once the provider answers)` : what;
  const runs = await createRuns(deps, delivery, [failedDraft(delivery, now, reason)]);
  await settle(deps, stored, { ...delivery, status: "failed", reason, attempts, lastError: what, runs, updatedAt: now });
  log.warn({ reason }, "delivery failed");
  return "resolved";
}

/** Writes the delivery's end; a concurrent resolution that got there first ends it just the same. */
async function settle(deps: ResolveDeps, stored: StoredDelivery, done: Delivery): Promise<void> {
  let current: StoredDelivery | undefined = stored;
  while (current && current.delivery.status === "pending") {
    if (await deps.deliveries.saveDelivery({ ...done, attempts: Math.max(done.attempts, current.delivery.attempts) }, current.version)) return;
    current = await deps.deliveries.getDelivery(stored.delivery.id);
  }
}

async function makeRuns(deps: ResolveDeps, delivery: Delivery, config: ParsedConfig): Promise<{ runs: DeliveryRun[] } | { ignored: string }> {
  const now = deps.clock.now();
  const { push } = delivery;
  if (!config.ok) return { runs: await createRuns(deps, delivery, [failedDraft(delivery, now, config.error)]) };
  const names = matchPushPipelines(config.file, push);
  if (names.length === 0) return { ignored: `no pipeline in ${HOIST_FILE} runs on ${push.ref}` };
  const drafts = names.map((name): Run => {
    const run = draft(delivery, name, now);
    const resolved = resolveStages(config.file.pipelines[name]!, { repoName: push.repo.fullName, registry: deps.registry });
    return resolved.ok
      ? { ...run, stages: resolved.stages.map((s) => ({ ...s, status: "pending" as const })) }
      : { ...run, stopped: { at: now, status: "failed", reason: resolved.error } };
  });
  const superseding = new Set(names.filter((name) => config.file.pipelines[name]?.concurrency?.cancel_in_progress));
  return { runs: await createRuns(deps, delivery, drafts, superseding) };
}

/**
 * One conditional write per run (an existing one is left as it is), then a wake-up for each new
 * queued one; a new run of a pipeline in `superseding` cancels that pipeline's older runs on the branch.
 */
async function createRuns(deps: ResolveDeps, delivery: Delivery, drafts: Run[], superseding: ReadonlySet<string> = new Set()): Promise<DeliveryRun[]> {
  const now = deps.clock.now();
  return Promise.all(
    drafts.map(async (d): Promise<DeliveryRun> => {
      const run = derive(d);
      const created = (await deps.store.createRun(run, { until: now + deps.redriveAfterMs })) === "created";
      if (created) deps.observer?.changed?.(undefined, run);
      // A crash between the write and the send loses nothing: the reconciler re-drives queued runs.
      if (created && run.status === "queued") await deps.queue.send({ runId: run.id });
      // After the newer run exists: a crash in between leaves older runs going, never a branch with none.
      if (created && superseding.has(run.pipeline)) await supersede(deps, run);
      return { id: run.id, pipeline: run.pipeline, status: run.status, ...(run.error ? { error: run.error } : {}) };
    }),
  );
}

/** The run a file that cannot be used stands for: failed at once, with the reason. */
function failedDraft(delivery: Delivery, now: number, reason: string): Run {
  return { ...draft(delivery, HOIST_FILE, now), stopped: { at: now, status: "failed", reason } };
}

function draft(delivery: Delivery, pipeline: string, now: number): Run {
  const { push } = delivery;
  return {
    id: deliveryRunId(push.provider, delivery.delivery, pipeline),
    repo: push.repo,
    ref: push.ref,
    ...(push.branch !== undefined ? { branch: push.branch } : {}),
    ...(push.tag !== undefined ? { tag: push.tag } : {}),
    sha: push.sha,
    pipeline,
    trigger: { type: "push", delivery: delivery.delivery, ...(push.actor ? { actor: push.actor } : {}), ...(push.actorEmail ? { email: push.actorEmail } : {}) },
    status: "queued",
    stages: [],
    createdAt: now,
    updatedAt: now,
  };
}
