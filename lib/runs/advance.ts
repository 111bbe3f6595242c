import { setTimeout as sleep } from "node:timers/promises";
import { isRetryable, messageOf as message } from "../errors.ts";
import type { Logger } from "../log.ts";
import { effectsBetween, failOversized, inFlight, jobName, plan, transition, type Effect, type RunEvent, type Transition } from "../pipeline/machine.ts";
import type { Run, StageSpec } from "../pipeline/run.ts";
import { TERMINAL } from "../pipeline/statuses.ts";
import type { Queue } from "../queue/port.ts";
import type { RunStore, StoredRun } from "../store/port.ts";
import { RecordTooLargeError } from "../store/too-large.ts";
import { runStage, stopStage, type ExecutorDeps, type Outcome } from "./executors.ts";
import { gateRule } from "./gate.ts";
import { logSink, type LogSink } from "./logs.ts";
import type { RunObserver } from "./observer.ts";

/** How long one look at a running job lasts before the worker checks the run again. */
const SLICE_MS = 2000;

export interface AdvanceDeps extends ExecutorDeps {
  store: RunStore;
  queue: Queue;
  log: Logger;
  redact: (text: string) => string;
  /** Identifies this worker process in leases (each call adds its own suffix). */
  workerId: string;
  leaseMs: number;
  /** How long one call may work before handing the run back to the queue. */
  budgetMs: number;
  redriveAfterMs: number;
  /** Told of each change the worker records (commit statuses, chat); never awaited. */
  observer?: RunObserver;
}

export type AdvanceResult = "finished" | "handed-over" | "busy" | "missing" | "already-final";

/**
 * Moves one run as far as it can within the budget: claims the run with a lease, then asks
 * the pure core what to do next, does it, and records the result as an event, until the run
 * ends or the budget runs out (then it re-enqueues itself). Safe to call any number of times
 * for the same run, concurrently or after a crash: the lease keeps two workers apart, events
 * are idempotent facts, and every engine job is named, so a re-driven worker re-attaches.
 */
let calls = 0;

export async function advanceRun(deps: AdvanceDeps, runId: string): Promise<AdvanceResult> {
  // One lease owner per call, not per process: two wake-ups of one run handled by the same
  // process must exclude each other just as two processes do.
  const owner = `${deps.workerId}/${++calls}`;
  const log = deps.log.child({ run: runId, worker: owner });
  const deadline = deps.clock.now() + deps.budgetMs;
  /** Stages this call started: their first look needs no search for an earlier job. */
  const startedHere = new Set<number>();
  /** A stage's start: a fact with no work behind it, so it is saved with whatever comes before it. */
  const startNow = (run: Run, effect: StartStage): RunEvent => ({ type: "stageStarted", stage: effect.stage, at: deps.clock.now(), job: jobName(run, effect.stage) });
  /** After the save that started `stage`, if one did. */
  const started = (run: Run, stage: number | undefined) => {
    if (stage === undefined) return;
    startedHere.add(stage);
    log.info({ stage: run.stages[stage]?.name }, "stage started");
  };
  const claimed = await claim(deps, runId, owner, startNow);
  if (typeof claimed === "string") return claimed;
  started(claimed.stored.run, claimed.started);
  let current: StoredRun = claimed.stored;
  const sinks = new Map<number, LogSink>();
  /** Finished job containers, removed once the run ends or is handed over (off the run's path). */
  const garbage: string[] = [];
  const sinkFor = async (stage: number, spec: StageSpec, stopping = false): Promise<LogSink> => {
    let logs = sinks.get(stage);
    if (!logs) {
      // A deploy stage's log is only Hoist's own lines (and a stopped stage's log gets one more):
      // a worker taking it over (after a delayed wake-up, a crash, a cancel) carries on after
      // the lines written before it.
      const resumed = (spec.kind === "deploy" || stopping) && !startedHere.has(stage);
      const prior = resumed ? (await deps.store.readLogs(runId, stage)).map((c) => c.text).join("") : "";
      sinks.set(stage, (logs = logSink(deps.store, runId, stage, deps.redact, prior)));
    }
    return logs;
  };
  // Renewed while the call is within its budget; a call stuck past it (a hung engine or
  // provider) lets the lease lapse, so the reconciler hands the run to another worker. A
  // release is one call that may outlast the budget (instances started one by one, each
  // health-gated): its run is held for as long as the release may hold its environment, or a
  // second worker would run the same release beside it.
  const beat = (spec: StageSpec) => {
    const holdFor = spec.kind === "deploy" && deps.releases ? Math.max(deps.leaseMs, deps.releases.leaseMs) : deps.leaseMs;
    const until = Math.max(deadline, deps.clock.now()) + holdFor;
    return setInterval(() => {
      if (deps.clock.now() > until) return;
      renew(deps, runId, owner).catch((err: unknown) => log.warn({ err }, "lease renewal failed"));
    }, deps.leaseMs / 3);
  };
  const done = (result: AdvanceResult): AdvanceResult => {
    for (const job of garbage.splice(0))
      deps.engine.removeJob(job).catch((err: unknown) => log.warn({ err, job }, "could not remove a finished job"));
    return result;
  };

  /**
   * One handler per effect of the pure core (a mapped type: an effect without a handler does not
   * compile). Each does the effect's work and says what follows: an event to record, the run to
   * look at afresh, or the end of this call.
   */
  const handlers: EffectHandlers = {
    startStage: async (effect) => ({ event: startNow(current.run, effect) }),
    runStage: async (effect) => {
      const stage = current.run.stages[effect.stage];
      const logs = await sinkFor(effect.stage, effect.spec);
      const heartbeat = beat(effect.spec);
      try {
        const outcome = await runStage(
          deps,
          {
            run: current.run,
            stage: effect.stage,
            job: effect.job,
            fresh: startedHere.delete(effect.stage),
            sliceMs: Math.max(0, Math.min(SLICE_MS, deadline - deps.clock.now())),
            logs,
            stopped: async () => (await deps.store.getRun(runId))?.run.stopped?.reason,
          },
          effect.spec,
        ).catch((err: unknown): Outcome => {
          // A retryable error (an engine or registry outage) comes back as a redelivery. No limit
          // is counted from the stage's start: a long build or canary would then fail at its
          // first blip. A permanent error (bad image name, missing Dockerfile...) fails the stage.
          if (isRetryable(err)) throw err;
          return { done: { type: "stageFinished", stage: effect.stage, at: deps.clock.now(), ok: false, error: deps.redact(message(err)) } };
        }).catch(async (err: unknown) => {
          // What the stage wrote before the outage is kept for the worker that carries on.
          await logs.flush().catch(() => undefined);
          throw err;
        });
        // The log is whole before the run says how the stage went, and before any hand-over.
        await logs.flush();
        if ("pending" in outcome) {
          // Between slices, look at the record: a cancel stops the stage here (the next plan
          // undoes it), before any wait.
          const fresh = await deps.store.getRun(runId);
          if (!fresh) return { end: "missing" };
          current = fresh;
          if (fresh.leaseOwner !== owner && inFlight(fresh.run)) {
            log.warn("lease lost to another worker; leaving the run to it");
            return { end: "busy" };
          }
          if (TERMINAL.has(fresh.run.status) || outcome.recheckAt === undefined) return { replan: true };
          // Nothing to do before recheckAt: past this call's budget, a delayed wake-up takes
          // over (no worker waits through a canary interval); within it, wait here.
          if (outcome.recheckAt > deadline) {
            await handOver(deps, current, outcome.recheckAt);
            log.info({ until: new Date(outcome.recheckAt).toISOString() }, "stage waits: handed over to a delayed wake-up");
            return { end: "handed-over" };
          }
          await sleep(Math.max(0, outcome.recheckAt - deps.clock.now()));
          return { replan: true };
        }
        log.info({ stage: stage?.name, ok: outcome.done.type === "stageFinished" && outcome.done.ok }, "stage finished");
        return { event: outcome.done, ...(outcome.remove ? { finishedJob: outcome.remove } : {}) };
      } finally {
        clearInterval(heartbeat);
      }
    },
    stopStage: async (effect) => {
      const logs = await sinkFor(effect.stage, effect.spec, true);
      const context = { run: current.run, stage: effect.stage, job: effect.job, fresh: false, sliceMs: 0, logs };
      const stoppedAt = current.run.stopped?.at ?? 0;
      const heartbeat = beat(effect.spec);
      try {
        const stopped = await stopStage(deps, context, effect.spec).catch(async (err: unknown) => {
          // Undoing cannot succeed by trying again (the environment is gone, say), or has been
          // tried for long enough: say so, and stop trying.
          const tried = giveUp(deps, err, stoppedAt);
          const error = deps.redact(`stopped, but could not undo the stage: ${message(err)}${tried}`);
          logs.write(`\nhoist: ${error}\n`);
          return { done: { type: "stageFinished", stage: effect.stage, at: deps.clock.now(), ok: false, error } satisfies RunEvent };
        });
        await logs.flush();
        log.info({ stage: current.run.stages[effect.stage]?.name, status: current.run.status }, "run stopped from outside; stage undone");
        return { event: stopped.done };
      } finally {
        clearInterval(heartbeat);
      }
    },
    openGate: async (effect) => {
      if (effect.spec.kind !== "deploy") return { replan: true };
      const at = deps.clock.now();
      const gate = await gateRule(deps.releases?.store, effect.spec, at);
      return { event: { type: "gateOpened", stage: effect.stage, at, ...gate } };
    },
    awaitApproval: async (effect) => {
      const now = deps.clock.now();
      if (now >= effect.expiresAt) return { event: { type: "gateExpired", stage: effect.stage, at: now } };
      // Decisions wake the run through the queue; until then, nobody's worker waits.
      await handOver(deps, current, effect.expiresAt);
      log.info({ stage: current.run.stages[effect.stage]?.name, until: new Date(effect.expiresAt).toISOString() }, "stage waits for approval");
      return { end: "handed-over" };
    },
    approvalRequested: async (effect) => {
      deps.observer?.approvalRequested?.(current.run, effect.stage);
      return { next: true };
    },
    runFinished: async (effect) => {
      log.info({ status: effect.status, error: current.run.error }, "run finished");
      return { next: true };
    },
  };

  let effects = plan(current.run);
  for (;;) {
    const [effect, ...rest] = effects;
    if (!effect) return done("finished");
    effects = rest;
    if (effect.type !== "runFinished" && deps.clock.now() >= deadline) {
      await handOver(deps, current);
      log.info("budget used: handed over through the queue");
      return done("handed-over");
    }
    const step = await (handlers[effect.type] as (e: Effect) => Promise<Step>)(effect);
    if ("end" in step) return done(step.end);
    if ("replan" in step) {
      effects = plan(current.run);
      continue;
    }
    if ("next" in step) continue;
    const committed = await commit(deps, current, step.event, owner, startNow);
    if (!committed) {
      log.warn("lease lost to another worker; leaving the run to it");
      return done("busy");
    }
    if (committed.effects) deps.observer?.changed?.(current.run, committed.stored.run);
    started(committed.stored.run, committed.started);
    current = committed.stored;
    if (step.finishedJob) garbage.push(step.finishedJob);
    // What the event led to; an event another worker had recorded already leads to nothing new.
    effects = committed.effects ?? plan(current.run);
  }
}

/** What handling one effect came to. */
type Step = { event: RunEvent; finishedJob?: string } | { replan: true } | { next: true } | { end: AdvanceResult };
type StartStage = Extract<Effect, { type: "startStage" }>;
type EffectHandlers = { [K in Effect["type"]]: (effect: Extract<Effect, { type: K }>) => Promise<Step> };

/** Takes the run's lease unless another worker holds a live one; a stage to start first starts in the same save. */
async function claim(
  deps: AdvanceDeps,
  runId: string,
  owner: string,
  startNow: (run: Run, effect: StartStage) => RunEvent,
): Promise<{ stored: StoredRun; started?: number } | "busy" | "missing" | "already-final"> {
  for (;;) {
    const stored = await deps.store.getRun(runId);
    if (!stored) return "missing";
    // A final run is done with, unless a stop left a stage in flight to undo.
    if (!inFlight(stored.run)) return "already-final";
    const now = deps.clock.now();
    if (stored.leaseOwner && (stored.leaseUntil ?? 0) > now) return "busy";
    const first = withStart({ run: stored.run, effects: plan(stored.run), changed: true }, startNow);
    const saved = await deps.store.saveRun(first.run, stored.version, { until: now + deps.leaseMs, owner });
    if (!saved) continue;
    if (first.started === undefined) return { stored: saved };
    deps.observer?.changed?.(stored.run, saved.run);
    return { stored: saved, started: first.started };
  }
}

/**
 * Records an event; on a version conflict re-reads and applies it again (events are
 * idempotent). Gives the saved run and the effects of the event (none when the event added
 * no fact: another worker recorded it, and handled its effects). Undefined when another
 * worker holds the run now: this one stops, and the holder finds the same result again
 * through the named job.
 */
async function commit(
  deps: AdvanceDeps,
  current: StoredRun,
  event: RunEvent,
  owner: string,
  startNow: (run: Run, effect: StartStage) => RunEvent,
): Promise<{ stored: StoredRun; effects?: Effect[]; started?: number } | undefined> {
  let stored = current;
  for (;;) {
    const next = withStart(transition(stored.run, event), startNow);
    if (!next.changed) return { stored };
    const lease = { until: deps.clock.now() + deps.leaseMs, owner };
    // A record the table can never take (the machine's bounds should make this rare) fails the
    // run, stripped to what fits, rather than being retried for ever.
    let effects = next.effects;
    // The stage this save starts: the event's own, or the one that came with it.
    let started = next.started ?? (event.type === "stageStarted" ? event.stage : undefined);
    const saved = await deps.store.saveRun(next.run, stored.version, lease).catch((err: unknown) => {
      if (!(err instanceof RecordTooLargeError)) throw err;
      const failed = failOversized(next.run, deps.clock.now(), `run record over the item limit: ${err.message}`);
      effects = effectsBetween(stored.run, failed);
      started = undefined;
      return deps.store.saveRun(failed, stored.version, lease);
    });
    if (saved) return { stored: saved, effects, ...(started !== undefined ? { started } : {}) };
    const fresh = await deps.store.getRun(stored.run.id);
    if (!fresh) throw new Error(`run ${stored.run.id} disappeared while it was being advanced`);
    if (fresh.leaseOwner && fresh.leaseOwner !== owner && (fresh.leaseUntil ?? 0) > deps.clock.now()) return undefined;
    stored = fresh;
  }
}

/**
 * The transition and, when what it leads to begins with a stage's start, that start too: one
 * save for a stage's end and the next one's start (or a claim and the first start) instead of
 * two. Nothing is done between the two that a crash could split: the next worker finds the
 * started stage's job by its name either way.
 */
function withStart(t: Transition, startNow: (run: Run, effect: StartStage) => RunEvent): Transition & { started?: number } {
  const [first, ...after] = t.effects;
  if (!t.changed || first?.type !== "startStage") return t;
  const started = transition(t.run, startNow(t.run, first));
  return started.changed ? { ...started, effects: [...started.effects, ...after], started: first.stage } : t;
}

async function renew(deps: AdvanceDeps, runId: string, owner: string): Promise<void> {
  const stored = await deps.store.getRun(runId);
  if (!stored || stored.leaseOwner !== owner || !inFlight(stored.run)) return;
  await deps.store.saveRun(stored.run, stored.version, { until: deps.clock.now() + deps.leaseMs, owner });
}

/**
 * How long undoing a stopped stage is retried through an outage (an engine, a router) before
 * it is given up: without a limit a cancelled run whose engine is gone for good would stay in
 * the reconciler's list for ever.
 */
const UNDO_PATIENCE_MS = 60 * 60_000;

/**
 * Rethrows `err` (the message comes back, the work is retried) while it is retryable and
 * less than UNDO_PATIENCE_MS has passed since `since`; otherwise says how long it was tried.
 */
function giveUp(deps: AdvanceDeps, err: unknown, since: number): string {
  if (!isRetryable(err)) return "";
  const waited = deps.clock.now() - since;
  if (waited < UNDO_PATIENCE_MS) throw err;
  return ` (tried for ${Math.round(waited / 60_000)} min)`;
}

/** SQS's longest message delay. */
const MAX_DELAY_SEC = 900;

/** Hands the run to the next worker through the queue: at once, or at `wakeAt`. */
async function handOver(deps: AdvanceDeps, current: StoredRun, wakeAt?: number): Promise<void> {
  // Release the lease first so the next worker can claim at once; if the send is lost,
  // the reconciler re-drives the run after the grace period (counted from the wake-up).
  const now = deps.clock.now();
  const wake = Math.max(now, wakeAt ?? now);
  let stored: StoredRun | undefined = current;
  while (stored && !(await deps.store.saveRun(stored.run, stored.version, { until: wake + deps.redriveAfterMs })))
    stored = await deps.store.getRun(current.run.id);
  // A wait past SQS's limit wakes a worker early, which finds the stage still waiting and hands over again.
  await deps.queue.send({ runId: current.run.id }, Math.min(MAX_DELAY_SEC, Math.ceil((wake - now) / 1000)));
}


