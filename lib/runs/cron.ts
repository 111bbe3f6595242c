import { classify, InternalError, messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import { dueSlot, latestSlot, nextSlot } from "../pipeline/schedule-slots.ts";
import type { ResolvedRef, SourceReader } from "../scm/port.ts";
import type { RegisteredSchedule, ScheduleStore, SlotClaim, StoredSchedule } from "../store/schedules.ts";
import { scheduleRunId } from "./ids.ts";
import { startPipelineRun, type StartDeps } from "./start-run.ts";

export interface CronDeps extends StartDeps {
  schedules: ScheduleStore;
  source: Pick<SourceReader, "resolveRef">;
  log: Logger;
}

/** Schedules one tick looks at; the rest stay due, and the next tick takes them first. */
export const SCHEDULES_PER_TICK = 100;
/** Schedules fired side by side: a provider that does not answer holds up a few, not the tick. */
const CONCURRENCY = 8;

export interface FireSummary {
  /**
   * The run of each slot fired. `created` is false for one another tick made: a tick that
   * stopped before settling its slot, or one overlapping this tick and taking up its claim.
   */
  started: { schedule: string; slot: number; runId: string; sha: string; created: boolean }[];
  /** Slots dealt with without a run, and why (no new commit, the branch is gone, the pipeline refused). */
  skipped: { schedule: string; slot: number; reason: string }[];
  /** Schedules that failed this tick (a provider outage, a table error): a claimed slot is tried again next tick. */
  failed: { schedule: string; error: string }[];
  /** Schedules looked at with no slot due: due again at their next slot. */
  waiting: number;
  /** Schedules another tick changed first, and so fires. */
  raced: number;
}

type Outcome =
  | { kind: "started"; slot: number; runId: string; sha: string; created: boolean }
  | { kind: "skipped"; slot: number; reason: string }
  | { kind: "waiting" }
  | { kind: "raced" };

/**
 * One scheduler tick: fires every due `on.schedule` slot once. Per schedule, one conditional
 * write claims the slot with the run id derived from it (of two overlapping ticks, one wins),
 * the branch head is resolved, and the run is started; the slot is settled only once the run
 * exists, or is skipped (`only_if_new_commits` with no new commit, the branch gone, a refusal
 * that retrying cannot change). A claim left by a tick that failed or crashed is taken up by
 * the next under the same run id. Slots missed while no tick ran are one slot, the latest. A
 * failure (a provider outage) is confined to its schedule; the summary is for logs and tests.
 */
export async function fireSchedules(deps: CronDeps, now: number, limit = SCHEDULES_PER_TICK): Promise<FireSummary> {
  const due = await deps.schedules.listSchedules(now, limit);
  const summary: FireSummary = { started: [], skipped: [], failed: [], waiting: 0, raced: 0 };
  // Schedules of one branch share its head: asked once a tick.
  const heads = new Map<string, Promise<ResolvedRef | undefined>>();
  const head = (repo: RepoRef, branch: string) => {
    const key = `${repo.provider}:${repo.cloneUrl}\n${branch}`;
    let found = heads.get(key);
    if (!found) heads.set(key, (found = deps.source.resolveRef(repo, branch)));
    return found;
  };
  const next = due.values();
  const worker = async () => {
    for (let item = next.next(); !item.done; item = next.next()) {
      const schedule = describe(item.value.record);
      try {
        const outcome = await fire(deps, item.value, now, head);
        if (outcome.kind === "started") summary.started.push({ schedule, slot: outcome.slot, runId: outcome.runId, sha: outcome.sha, created: outcome.created });
        else if (outcome.kind === "skipped") summary.skipped.push({ schedule, slot: outcome.slot, reason: outcome.reason });
        else if (outcome.kind === "waiting") summary.waiting++;
        else summary.raced++;
        if (outcome.kind === "started" || outcome.kind === "skipped")
          deps.log.info({ schedule, ...outcome, slot: new Date(outcome.slot).toISOString() }, `scheduled slot ${outcome.kind}`);
      } catch (err) {
        summary.failed.push({ schedule, error: messageOf(err) });
        deps.log.warn({ schedule, err }, "scheduled slot failed: tried again next tick");
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, due.length) }, worker));
  return summary;
}

async function fire(
  deps: CronDeps,
  stored: StoredSchedule,
  now: number,
  head: (repo: RepoRef, branch: string) => Promise<ResolvedRef | undefined>,
): Promise<Outcome> {
  const { record, version } = stored;
  if (record.claim) {
    // Started by a tick that stopped before it could settle the slot.
    const run = await deps.store.getRun(record.claim.runId);
    if (run) return settle(deps, stored, { kind: "started", slot: record.claim.slot, runId: run.run.id, sha: run.run.sha, created: false });
  }
  const slot = dueSlot(record.schedule, { lastSlot: record.lastSlot, now });
  if (slot !== undefined) {
    // The claim is also how a newer slot replaces one whose run never started. Due again at once
    // until settled, so a tick that dies here leaves the slot to the next.
    const claim: SlotClaim = { slot, runId: scheduleRunId(`${record.repo.provider}:${record.repo.fullName}`, record.id, slot), at: now };
    const saved = await deps.schedules.saveSchedule({ ...record, lastSlot: slot, claim }, version, now);
    return saved ? start(deps, saved, claim, head) : { kind: "raced" };
  }
  if (record.claim) return start(deps, stored, record.claim, head);
  // Nothing due: looked at again at the next slot. Seen for the first time, the slots already
  // passed count as dealt with, so a tick that comes late for the next one still fires it.
  const seen = record.lastSlot ?? latestSlot(record.schedule, now);
  const saved = await deps.schedules.saveSchedule({ ...record, ...(seen !== undefined ? { lastSlot: seen } : {}) }, version, nextSlot(record.schedule, Math.max(now, seen ?? now)));
  return saved ? { kind: "waiting" } : { kind: "raced" };
}

/** Starts the claimed slot's run at the branch head, or skips the slot; a retryable failure leaves the claim. */
async function start(
  deps: CronDeps,
  stored: StoredSchedule,
  { slot, runId }: SlotClaim,
  head: (repo: RepoRef, branch: string) => Promise<ResolvedRef | undefined>,
): Promise<Outcome> {
  const { record } = stored;
  const skip = (reason: string) => settle(deps, stored, { kind: "skipped", slot, reason });
  const at = await head(record.repo, record.branch);
  if (!at) return skip(`branch ${record.branch} of ${record.repo.fullName} does not exist`);
  if (record.schedule.only_if_new_commits && at.sha === record.lastSha) return skip(`no new commit on ${record.branch} since the last scheduled run (${at.sha.slice(0, 12)})`);
  try {
    const { run, created } = await startPipelineRun(deps, {
      id: runId,
      repo: record.repo,
      ref: `refs/heads/${record.branch}`,
      branch: record.branch,
      sha: at.sha,
      pipeline: record.pipeline,
      trigger: { type: "schedule", cron: record.schedule.cron, slot },
    });
    return settle(deps, stored, { kind: "started", slot, runId: run.id, sha: run.sha, created });
  } catch (err) {
    // A refusal (no .hoist.yml at the head, a broken one, a pipeline without the schedule any
    // more, a token the provider refuses) would be the next tick's answer too: the slot is
    // skipped with it. Anything else keeps the claim: the run may exist already (made, then the
    // message failed), and the next tick finds it or starts it.
    const e = classify(err);
    if (e.retryable || e instanceof InternalError) throw e;
    return skip(e.message);
  }
}

/**
 * Marks the claimed slot dealt with, due again at the slot after it (at once, when a newer one
 * came meanwhile). A conflict leaves the claim for the next tick, which finds the run or skips again.
 */
async function settle(deps: CronDeps, stored: StoredSchedule, outcome: Extract<Outcome, { slot: number }>): Promise<Outcome> {
  const { claim: _settled, ...record } = stored.record;
  const lastSlot = Math.max(record.lastSlot ?? outcome.slot, outcome.slot);
  const done: RegisteredSchedule = { ...record, lastSlot, ...(outcome.kind === "started" ? { lastSha: outcome.sha } : {}) };
  await deps.schedules.saveSchedule(done, stored.version, nextSlot(record.schedule, lastSlot));
  return outcome;
}

function describe(record: RegisteredSchedule): string {
  return `${record.repo.fullName}@${record.branch} ${record.pipeline} "${record.schedule.cron}"${record.schedule.timezone ? ` ${record.schedule.timezone}` : ""}`;
}
