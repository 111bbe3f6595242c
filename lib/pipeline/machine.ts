import { TERMINAL, type Run, type RunStatus, type Stage, type StageOutput, type StageSpec, type StageStatus } from "./run.ts";
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
  | { type: "stop"; at: number; status: "cancelled" | "failed"; reason: string };

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
  return TERMINAL.has(after.status) && !TERMINAL.has(before.status) ? [{ type: "runFinished", status: after.status }, ...plan(after)] : plan(after);
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
export function jobName(run: Pick<Run, "id" | "sha" | "stages">, stage: number): string {
  const spec = run.stages[stage]?.spec;
  if (spec?.kind === "build") return `hoist-build-${safe(spec.image)}${spec.compose !== undefined ? "-compose" : ""}-${run.sha.slice(0, 12)}`;
  return `hoist-${spec?.kind ?? "stage"}-${run.id}-${stage}`;
}

export function imageTag(image: string, sha: string): string {
  return `${image}:${sha}`;
}

function safe(s: string): string {
  return s.replace(/[^a-zA-Z0-9_.-]+/g, "-");
}

function apply(run: Run, event: RunEvent): Run {
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
      status = s.startedAt === undefined ? "pending" : "running";
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
