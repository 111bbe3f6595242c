import { alreadyDecided, gateState, gateSummary, MAX_DECISIONS, refusal, type ApprovalRule, type DecisionInput, type Gate } from "./approval.ts";
import type { Attempt, Run, Stage, StageOutput, StageSpec } from "./run.ts";
import { TERMINAL, type RunStatus, type StageStatus } from "./statuses.ts";
import { clipText, jsonBytes, MAX_OUTPUT_BYTES, RUN_BUDGET_BYTES } from "./size.ts";

/**
 * The pipeline core: a pure state machine, `transition(run, event) -> { run, effects }`.
 *
 * Events only add facts to a run (each fact is written once, first writer wins), and every
 * status is derived from the facts. So a duplicated or reordered event changes nothing that
 * the same events in another order would not: at-least-once delivery and re-driven workers
 * converge on one final run. Time comes in on events; nothing here reads a clock.
 */

export type RunEvent =
  | { type: "stageStarted"; stage: number; at: number; job?: string }
  | { type: "stageFinished"; stage: number; at: number; ok: boolean; error?: string; output?: StageOutput }
  /** Stops the run from outside its stages: a user's cancel, or a config the run cannot use. */
  | { type: "stop"; at: number; status: "cancelled" | "failed"; reason: string }
  /** A deploy stage came up: the approval it needs (none: `rule` absent), or why no one could give it. */
  | { type: "gateOpened"; stage: number; at: number; rule?: ApprovalRule; error?: string }
  /** Someone approved or rejected at a stage's gate (judged here: allow-list, self-approval, one decision each). */
  | ({ type: "decided"; stage: number } & DecisionInput)
  /** A worker woke at a gate's deadline: without its approvals by then, the stage fails. */
  | { type: "gateExpired"; stage: number; at: number }
  /**
   * A final run goes again from stage `from`: what those stages came to is kept as attempt
   * `attempt - 1`, and they start afresh (a build finds its image and is not redone).
   */
  | { type: "rerun"; at: number; by: string; from: number; attempt: number };

export type Effect =
  /** Record that the stage starts (the worker then carries it out). */
  | { type: "startStage"; stage: number; spec: StageSpec }
  /** Carry out, or re-attach to, a stage that has started. */
  | { type: "runStage"; stage: number; spec: StageSpec; job: string }
  /**
   * Undo what a stop caught in flight (a test's container, a release under way), then record
   * the stage's end: its result comes after the stop, so the run stays as the stop left it.
   */
  | { type: "stopStage"; stage: number; spec: StageSpec; job: string }
  /** A deploy stage comes up: find what approval it needs (its own, its environment's). */
  | { type: "openGate"; stage: number; spec: StageSpec }
  /** The stage waits for approvals: nobody's worker waits with it; a wake-up comes at the deadline. */
  | { type: "awaitApproval"; stage: number; expiresAt: number }
  /** The stage has just begun to wait for approvals: ask the approvers (chat). */
  | { type: "approvalRequested"; stage: number }
  /** The run has just reached a final status: report it (commit status, chat). */
  | { type: "runFinished"; status: RunStatus };


export interface Transition {
  run: Run;
  effects: Effect[];
  /** False when the event added no fact (a duplicate, or about a stage the run lacks). */
  changed: boolean;
}

export function transition(run: Run, event: RunEvent): Transition {
  const next = apply(run, event);
  if (next === run) return { run, effects: [], changed: false };
  const derived = fitRecord(derive(next), event.at);
  return { run: derived, effects: effectsBetween(run, derived), changed: true };
}

/** What a change of the run from `before` to `after` leads to. */
export function effectsBetween(before: Run, after: Run): Effect[] {
  // A run that has just become final is reported, then whatever a stop left in flight is undone.
  if (TERMINAL.has(after.status) && !TERMINAL.has(before.status)) return [{ type: "runFinished", status: after.status }, ...plan(after)];
  const asked = after.stages.findIndex((s, i) => s.status === "waiting" && before.stages[i]?.status !== "waiting");
  return asked >= 0 ? [{ type: "approvalRequested", stage: asked }, ...plan(after)] : plan(after);
}

/** What to do next for a run in its current state; once it is final, only undoing what a stop left running. */
export function plan(run: Run): Effect[] {
  if (TERMINAL.has(run.status)) {
    const caught = run.stopped ? run.stages.findIndex((s) => s.startedAt !== undefined && s.ok === undefined) : -1;
    const stage = run.stages[caught];
    return stage ? [{ type: "stopStage", stage: caught, spec: stage.spec, job: stage.job ?? jobName(run, caught) }] : [];
  }
  const index = run.stages.findIndex((s) => s.ok === undefined);
  const stage = run.stages[index];
  if (!stage) return [];
  if (stage.startedAt === undefined && stage.spec.kind === "deploy") {
    if (!stage.gate) return [{ type: "openGate", stage: index, spec: stage.spec }];
    if (stage.gate.rule && gateState(stage.gate) === "waiting") return [{ type: "awaitApproval", stage: index, expiresAt: stage.gate.rule.expiresAt }];
  }
  if (stage.startedAt === undefined) return [{ type: "startStage", stage: index, spec: stage.spec }];
  return [{ type: "runStage", stage: index, spec: stage.spec, job: stage.job ?? jobName(run, index) }];
}

/**
 * Whether the run still has work for a worker, leased and watched by the reconciler: it is
 * unfinished, or final with a stage that its stop caught in flight still to undo.
 */
export function inFlight(run: Run): boolean {
  return !TERMINAL.has(run.status) || plan(run).length > 0;
}

/**
 * The engine job that carries out a stage. A build is named by its image tag, not by the
 * run: two runs of one sha share one build, and `<image>:<sha>` is never built twice.
 */
export function jobName(run: Pick<Run, "id" | "sha" | "stages" | "attempts">, stage: number): string {
  const spec = run.stages[stage]?.spec;
  if (spec?.kind === "build") return `hoist-build-${safe(spec.image)}${spec.compose !== undefined ? "-compose" : ""}-${run.sha.slice(0, 12)}`;
  // A re-run's stage is a new job: the old one's container holds the earlier attempt's result.
  const attempt = (run.attempts?.length ?? 0) + 1;
  return `hoist-${spec?.kind ?? "stage"}-${run.id}-${stage}${attempt > 1 ? `-a${attempt}` : ""}`;
}

export function imageTag(image: string, sha: string): string {
  return `${image}:${sha}`;
}

function safe(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]+/g, "-");
}

function apply(run: Run, event: RunEvent): Run {
  // An event from before the run's latest re-run belongs to an earlier attempt.
  if (event.at < (run.attempts?.at(-1)?.at ?? -Infinity)) return run;
  if (event.type === "rerun") return rerun(run, event);
  if (event.type === "gateOpened" || event.type === "decided" || event.type === "gateExpired") return atGate(run, event);
  if (event.type === "stop") {
    if (run.stopped) return run;
    const { at, status, reason } = event;
    return { ...run, stopped: { at, status, reason: clipText(reason) }, updatedAt: Math.max(run.updatedAt, at) };
  }
  const stage = run.stages[event.stage];
  if (!stage) return run;
  // The earliest start is kept (a finish with no recorded start counts as one), so the
  // order in which a start and a finish arrive does not matter.
  const startedAt = Math.min(stage.startedAt ?? Infinity, event.at);
  const facts: Partial<Stage> =
    event.type === "stageStarted"
      ? { startedAt, job: stage.job ?? event.job }
      : stage.ok !== undefined
        ? {}
        : { finishedAt: event.at, ok: event.ok, error: event.error && clipText(event.error), output: event.output && clipOutput(event.output), startedAt };
  const merged = { ...stage, ...withoutUndefined(facts) };
  if (sameFacts(stage, merged)) return run;
  const stages = run.stages.map((s, i) => (i === event.stage ? merged : s));
  return { ...run, stages, updatedAt: Math.max(run.updatedAt, event.at) };
}

type GateEvent = Extract<RunEvent, { type: "gateOpened" | "decided" | "gateExpired" }>;

/** A gate event's facts: the gate opened once, a decision per person, a rejection or deadline failing the stage. */
function atGate(run: Run, event: GateEvent): Run {
  const stage = run.stages[event.stage];
  if (!stage || stage.spec.kind !== "deploy" || stage.ok !== undefined || stage.startedAt !== undefined || run.stopped) return run;
  let next: Stage;
  if (event.type === "gateOpened") {
    if (stage.gate) return run;
    const gate: Gate = { openedAt: event.at, decisions: [], ...(event.rule ? { rule: event.rule } : {}) };
    next = { ...stage, gate, ...(event.error ? { ok: false, finishedAt: event.at, error: clipText(event.error) } : {}) };
  } else if (!stage.gate) {
    return run;
  } else if (event.type === "gateExpired") {
    if (gateState(stage.gate, event.at) !== "expired") return run;
    next = { ...stage, ok: false, finishedAt: event.at, error: gateSummary(stage.gate, "expired") };
  } else {
    const gate = stage.gate;
    if (alreadyDecided(gate, event)) return run;
    const { by, via, at, approve, reason } = event;
    const refused = refusal(gate, event, starter(run));
    // Refusals are kept while there is room (who tried, and why it did not count); decisions that count always are.
    if (refused && gate.decisions.length >= MAX_DECISIONS) return run;
    const decision = { by, via, at, approve, ...(reason ? { reason: clipText(reason, 500) } : {}), ...(refused ? { refused: clipText(refused, 400) } : {}) };
    const decided: Gate = { ...gate, decisions: [...gate.decisions, decision] };
    const state = gateState(decided);
    next = { ...stage, gate: decided, ...(state === "rejected" ? { ok: false, finishedAt: at, error: gateSummary(decided, state) } : {}) };
  }
  return { ...run, stages: run.stages.map((s, i) => (i === event.stage ? next : s)), updatedAt: Math.max(run.updatedAt, event.at) };
}

/** Every name whoever started the run goes by: a push's pusher and email, a manual run's caller. */
function starter(run: Run): string[] {
  const t = run.trigger;
  if (t.type === "schedule") return [];
  return [t.actor, t.type === "push" ? t.email : undefined].filter((n): n is string => n !== undefined);
}

/** Most attempts a run keeps: each is a summary of the stages it re-ran. */
export const MAX_ATTEMPTS = 5;

/** Why a run cannot go again from stage `from` now, or undefined when it can. */
export function rerunRefusal(run: Run, from: number): string | undefined {
  if (!TERMINAL.has(run.status) || plan(run).length > 0) return `run ${run.id} is ${run.status}: only a finished run can be re-run`;
  if (run.status === "succeeded") return `run ${run.id} succeeded: push or trigger a new run instead`;
  if ((run.attempts?.length ?? 0) + 1 >= MAX_ATTEMPTS) return `run ${run.id} has had ${MAX_ATTEMPTS} attempts: trigger a new run instead`;
  const firstUnfinished = run.stages.findIndex((s) => s.status !== "succeeded");
  if (!Number.isInteger(from) || from < 0 || from >= run.stages.length) return `run ${run.id} has stages 0 to ${run.stages.length - 1}`;
  if (from > firstUnfinished) return `stage ${run.stages[firstUnfinished]?.name} did not succeed: re-run from it or an earlier stage`;
  if (from > 0 && !run.stages.slice(0, from).some((s) => s.spec.kind === "build"))
    return `stage ${run.stages[from]?.name} needs the build before it: re-run from the build or an earlier stage`;
  return undefined;
}

function rerun(run: Run, event: Extract<RunEvent, { type: "rerun" }>): Run {
  if (event.attempt !== (run.attempts?.length ?? 0) + 1 || rerunRefusal(run, event.from)) return run;
  const attempt: Attempt = {
    at: event.at,
    by: clipText(event.by, 200),
    from: event.from,
    status: run.status,
    ...(run.error ? { error: clipText(run.error, 400) } : {}),
    stages: run.stages.slice(event.from).map((s) => withoutUndefined({ name: s.name, status: s.status, error: s.error && clipText(s.error, 300), startedAt: s.startedAt, finishedAt: s.finishedAt })),
  };
  const stages = run.stages.map((s, i): Stage => (i < event.from ? s : { name: s.name, spec: s.spec, status: "pending" }));
  const { stopped: _stopped, error: _error, finishedAt: _finished, ...rest } = run;
  return { ...rest, stages, attempts: [...(run.attempts ?? []), attempt], updatedAt: Math.max(run.updatedAt, event.at) };
}

/** Recomputes every status and summary field of a run from its facts. */
export function derive(run: Run): Run {
  let blockedBy: "failed" | "cancelled" | "open" | undefined;
  let failure: Stage | undefined;
  // A result counts only if it came before a stop: a cancelled run stays cancelled however
  // late the in-flight stage reports. Judged by time, not arrival, so order does not matter.
  const result = (s: Stage) => (run.stopped && (s.finishedAt ?? Infinity) > run.stopped.at ? undefined : s.ok);
  const stages = run.stages.map((s): Stage => {
    let status: StageStatus;
    if (blockedBy) status = blockedBy === "open" ? "pending" : "skipped";
    else if (result(s) === true) status = "succeeded";
    else if (result(s) === false) {
      status = "failed";
      blockedBy = "failed";
      failure = s;
    } else if (run.stopped) {
      status = run.stopped.status;
      blockedBy = run.stopped.status;
    } else {
      status = s.startedAt !== undefined ? "running" : gateState(s.gate) === "waiting" ? "waiting" : "pending";
      blockedBy = "open";
    }
    return { ...s, status };
  });
  // A run with no stage (its config was unusable) ends as its stop says.
  if (!blockedBy && run.stopped && stages.length === 0) blockedBy = run.stopped.status;
  const status: RunStatus =
    blockedBy === "failed" || blockedBy === "cancelled"
      ? blockedBy
      : blockedBy === undefined
        ? stages.length > 0
          ? "succeeded"
          : "queued"
        : stages.some((s) => s.status === "waiting")
          ? "waiting"
          : stages.some((s) => s.startedAt !== undefined)
            ? "running"
            : "queued";
  const done = stages.filter((s) => s.status === "succeeded" || s.status === "failed");
  const build = stages.find((s) => s.status === "succeeded" && s.output?.image);
  const push = stages.find((s) => s.status === "succeeded" && s.output?.digest);
  const stoppedHere = !failure && run.stopped && status === run.stopped.status;
  const finishedAt = TERMINAL.has(status)
    ? Math.max(...done.map((s) => s.finishedAt ?? 0), stoppedHere ? (run.stopped?.at ?? 0) : 0)
    : undefined;
  return withoutUndefined({
    ...run,
    stages,
    status,
    // A stop recorded without an event (a run created failed) is bounded here too.
    ...(run.stopped ? { stopped: { ...run.stopped, reason: clipText(run.stopped.reason) } } : {}),
    error: failure ? `${failure.name}: ${failure.error ?? "failed"}` : stoppedHere ? run.stopped && clipText(run.stopped.reason) : undefined,
    image: build?.output?.image ?? run.image,
    digest: push?.output?.digest ?? run.digest,
    startedAt: stages[0]?.startedAt,
    finishedAt,
  });
}

/**
 * The run, or when its record would outgrow RUN_BUDGET_BYTES, the run failed at `at` and
 * stripped to fit (see failOversized). Events only add bounded facts, and a run is created
 * with room for them (resolveStages), so this is the last guard, not the usual path.
 */
export function fitRecord(run: Run, at: number): Run {
  const bytes = jsonBytes(run);
  if (bytes <= RUN_BUDGET_BYTES) return run;
  return failOversized(run, at, `run record over the item limit: ${bytes} bytes of JSON, at most ${RUN_BUDGET_BYTES} are kept; long fields were cut (see the stage logs)`);
}

/** Each string of a stripped record keeps at most this much: ids, names, times and statuses survive. */
const STRIPPED_TEXT_BYTES = 256;

/**
 * A run that can never be saved as it is, stripped to a small record and failed at `at` with
 * `reason` (an earlier stop stands, the first stop wins; a run whose stages all ended keeps their
 * outcome, as after any late stop). Every string is cut short, a test's environment and a build's
 * arguments dropped; ids, names, statuses, times and job names stay, so a stage the stop caught
 * in flight is still undone. Applying it twice changes nothing more.
 */
export function failOversized(run: Run, at: number, reason: string): Run {
  const stages = run.stages.map((s): Stage => {
    const spec: StageSpec = s.spec.kind === "test" ? { ...s.spec, env: {} } : s.spec.kind === "build" ? { ...s.spec, args: {} } : s.spec;
    return { ...s, spec };
  });
  const stripped = clipStrings({ ...run, stages }, STRIPPED_TEXT_BYTES);
  const stopped = run.stopped ? stripped.stopped : { at, status: "failed" as const, reason: clipText(reason, 1024) };
  return derive({ ...stripped, ...(stopped ? { stopped } : {}), updatedAt: Math.max(run.updatedAt, at) });
}

function clipOutput(output: StageOutput): StageOutput {
  return Object.fromEntries(Object.entries(output).map(([k, v]) => [k, typeof v === "string" ? clipText(v, MAX_OUTPUT_BYTES) : v]));
}

/** `value` with every string in it clipped to `maxBytes` (keys stay as they are). */
function clipStrings<T>(value: T, maxBytes: number): T {
  if (typeof value === "string") return clipText(value, maxBytes, "cut to fit the run record") as T;
  if (Array.isArray(value)) return value.map((v: unknown) => clipStrings(v, maxBytes)) as T;
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clipStrings(v, maxBytes)])) as T;
  return value;
}

function sameFacts(a: Stage, b: Stage): boolean {
  return a.startedAt === b.startedAt && a.job === b.job && a.ok === b.ok && a.finishedAt === b.finishedAt;
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
