import type { Environment } from "../release/environment.ts";
import type { ReleaseRecord } from "../release/records.ts";
import type { Run, Stage } from "../pipeline/run.ts";
import type { RunStatus, StageStatus } from "../pipeline/statuses.ts";
import { parseImageRef, repositoryOf } from "../pipeline/image-ref.ts";
import { formatDuration } from "../duration.ts";
import { gateState, gateSummary } from "../pipeline/approval.ts";
import { deployedImages } from "../pipeline/run-images.ts";

/**
 * Pure formatting for the `hoist` CLI: durations, ages, statuses, tables and run views.
 * Nothing here reads the clock, the environment or a terminal: callers pass `now` and
 * whether to colour, so every function is testable as is.
 */

// ---------------------------------------------------------------------------------------
// ANSI

const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  cyan: [36, 39],
  gray: [90, 39],
} as const;
export type Style = keyof typeof CODES;

/** `text` wrapped in the style's ANSI codes when `enabled`, else unchanged. */
export function paint(style: Style, text: string, enabled: boolean): string {
  if (!enabled || text === "") return text;
  const [on, off] = CODES[style];
  return `\x1b[${on}m${text}\x1b[${off}m`;
}

// Select Graphic Rendition sequences, plus the cursor/erase ones a redraw writes.
// eslint-disable-next-line no-control-regex
const ANSI_PATTERN = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI_PATTERN, "");
}

/** Width on a terminal: characters without escape codes (every character counted as one column). */
export function visibleWidth(text: string): number {
  return [...stripAnsi(text)].length;
}

// ---------------------------------------------------------------------------------------
// Time

export { formatDuration };

/** How long ago `then` was, coarse: `just now`, `12s ago`, `5m ago`, `3h ago`, `2d ago`. */
export function formatAge(then: number, now: number): string {
  const ms = now - then;
  if (ms < 1000) return "just now";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ago`;
  return `${Math.floor(h / 24)}d ago`;
}

/** Elapsed seconds with one decimal, right-aligned for a progress gutter: `[  3.2s]`. */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const text = s < 1000 ? `${s.toFixed(1)}s` : formatDuration(ms);
  return `[${text.padStart(6)}]`;
}


/** Time a run has taken: until it finished, or until `now` while it goes on; undefined before it starts. */
export function runDuration(run: Pick<Run, "status" | "createdAt" | "startedAt" | "finishedAt">, now: number): number | undefined {
  const start = run.startedAt ?? (run.finishedAt !== undefined ? run.createdAt : undefined);
  if (start === undefined) return undefined;
  return (run.finishedAt ?? now) - start;
}

/** Time a stage has taken: until it finished, or until `now` while it runs; undefined before it starts. */
export function stageDuration(stage: Pick<Stage, "startedAt" | "finishedAt">, now: number): number | undefined {
  if (stage.startedAt === undefined) return undefined;
  return (stage.finishedAt ?? now) - stage.startedAt;
}

// ---------------------------------------------------------------------------------------
// Status

const FINAL_RUN: ReadonlySet<string> = new Set<RunStatus>(["succeeded", "failed", "cancelled"]);
const FINAL_STAGE: ReadonlySet<string> = new Set<StageStatus>(["succeeded", "failed", "skipped", "cancelled"]);

export function isFinalRun(status: RunStatus): boolean {
  return FINAL_RUN.has(status);
}

export function isFinalStage(status: StageStatus): boolean {
  return FINAL_STAGE.has(status);
}

const STATUS_STYLE: Record<RunStatus | StageStatus, Style> = {
  queued: "gray",
  pending: "gray",
  running: "yellow",
  waiting: "cyan",
  succeeded: "green",
  failed: "red",
  cancelled: "gray",
  skipped: "gray",
};

const STATUS_MARK: Record<RunStatus | StageStatus, string> = {
  queued: "·",
  pending: "·",
  running: "▶",
  waiting: "⏸",
  succeeded: "✓",
  failed: "✗",
  cancelled: "⊘",
  skipped: "-",
};

/** The status word, coloured when `color`. */
export function formatStatus(status: RunStatus | StageStatus, color: boolean): string {
  return paint(STATUS_STYLE[status], status, color);
}

/** A one-character mark for the status (✓ ✗ ▶ …), coloured when `color`. */
export function statusMark(status: RunStatus | StageStatus, color: boolean): string {
  return paint(STATUS_STYLE[status], STATUS_MARK[status], color);
}

// ---------------------------------------------------------------------------------------
// Text

/** The first non-empty line of `text`, cut to `max` characters with an ellipsis. */
export function excerpt(text: string | undefined, max = 60): string {
  if (!text) return "";
  const line = text.split(/\r?\n/).find((l) => l.trim() !== "")?.trim() ?? "";
  const chars = [...line];
  if (chars.length <= max) return line;
  return chars.slice(0, Math.max(0, max - 1)).join("") + "…";
}

/** What a run was built from: the branch, `tag:<name>` for a tag, else the raw ref. */
export function refLabel(run: Pick<Run, "ref" | "branch" | "tag">): string {
  if (run.branch) return run.branch;
  if (run.tag) return `tag:${run.tag}`;
  return run.ref;
}

/** Why a run failed or stopped: its own error, else the first failed stage's. */
export function runError(run: Run): string | undefined {
  return run.error ?? run.stopped?.reason ?? run.stages.find((s) => s.error)?.error;
}

// ---------------------------------------------------------------------------------------
// Tables

export interface TableOptions {
  /** Column indexes to right-align (numbers, durations). */
  alignRight?: readonly number[];
  /** Characters between columns. */
  gap?: number;
  /** Styles the header row (e.g. bold) when set. */
  headerStyle?: (text: string) => string;
}

/**
 * Rows padded into aligned columns; widths ignore ANSI codes so coloured cells line up.
 * The last column is not padded, so lines carry no trailing blanks.
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], opts: TableOptions = {}): string {
  const gap = " ".repeat(opts.gap ?? 2);
  const all = [headers, ...rows];
  const columns = Math.max(...all.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, c) => Math.max(0, ...all.map((r) => visibleWidth(r[c] ?? ""))));
  const right = new Set(opts.alignRight ?? []);
  const line = (row: readonly string[], header: boolean) => {
    const cells = widths.map((w, c) => {
      const cell = row[c] ?? "";
      const fill = " ".repeat(w - visibleWidth(cell));
      const padded = right.has(c) ? fill + cell : c === columns - 1 ? cell : cell + fill;
      return header && opts.headerStyle ? opts.headerStyle(padded) : padded;
    });
    return cells.join(gap).replace(/\s+$/, "");
  };
  return [line(headers, true), ...rows.map((r) => line(r, false))].join("\n");
}

export interface ViewOptions {
  now: number;
  color: boolean;
}

/** Newest first by creation time; runs created in the same millisecond keep their order. */
export function newestFirst(runs: readonly Run[]): Run[] {
  return runs
    .map((run, i) => ({ run, i }))
    .sort((a, b) => b.run.createdAt - a.run.createdAt || a.i - b.i)
    .map((x) => x.run);
}

/** The `hoist runs` table: id, repo, branch/tag, pipeline, status, age, duration, error. */
export function runsTable(runs: readonly Run[], { now, color }: ViewOptions): string {
  if (runs.length === 0) return "no runs";
  const rows = newestFirst(runs).map((run) => {
    const d = runDuration(run, now);
    return [
      run.id,
      run.repo.fullName,
      refLabel(run),
      run.pipeline,
      formatStatus(run.status, color),
      formatAge(run.createdAt, now),
      d === undefined ? "-" : formatDuration(d),
      paint("red", excerpt(runError(run), 50), color),
    ];
  });
  return table(["ID", "REPO", "BRANCH/TAG", "PIPELINE", "STATUS", "AGE", "DURATION", "ERROR"], rows, {
    alignRight: [6],
    headerStyle: (h) => paint("bold", h, color),
  });
}

/** Where the run's image went: the push stage's reference by digest, when there is one. */
export function pullReference(run: Run): string | undefined {
  const pushed = [...run.stages].reverse().find((s) => s.spec.kind === "push" && s.status === "succeeded");
  const digest = pushed?.output?.digest ?? run.digest;
  if (!pushed || !digest) return undefined;
  const target = pushed.spec.kind === "push" ? pushed.spec.target : undefined;
  const image = pushed.output?.image ?? target;
  if (!image) return undefined;
  return `${withoutTag(image)}@${digest}`;
}

/** `host:5000/app:tag` → `host:5000/app`. */
export function withoutTag(image: string): string {
  return repositoryOf(parseImageRef(image));
}

/** `hoist run <id>`: the run's facts, then one row per stage. */
export function runDetail(run: Run, { now, color }: ViewOptions): string {
  const label = (s: string) => paint("bold", s, color);
  const d = runDuration(run, now);
  const trigger =
    run.trigger.type === "push"
      ? `push (delivery ${run.trigger.delivery}${run.trigger.actor ? `, by ${run.trigger.actor}` : ""})`
      : run.trigger.type === "manual"
        ? `manual${run.trigger.actor ? ` (by ${run.trigger.actor})` : ""}`
        : `schedule (${run.trigger.cron})`;
  const facts: [string, string][] = [
    ["run", run.id],
    ["repo", `${run.repo.fullName} (${run.repo.provider})`],
    ["ref", `${refLabel(run)} @ ${run.sha.slice(0, 12)}`],
    ["pipeline", run.pipeline],
    ["trigger", trigger],
    ["status", `${statusMark(run.status, color)} ${formatStatus(run.status, color)}`],
    ["created", formatAge(run.createdAt, now)],
    ["duration", d === undefined ? "-" : formatDuration(d) + (isFinalRun(run.status) ? "" : " so far")],
  ];
  if (run.image) facts.push(["image", run.image]);
  if (run.digest) facts.push(["digest", run.digest]);
  const pull = pullReference(run);
  if (pull) facts.push(["pull", `docker pull ${pull}`]);
  // A compose build's images, each service's (by digest once pushed).
  const images = deployedImages(run);
  for (const [service, image] of Object.entries(images ?? {})) facts.push([`image (${service})`, image]);
  const error = runError(run);
  if (error) facts.push(["error", paint("red", excerpt(error, 200), color)]);
  const width = Math.max(...facts.map(([k]) => k.length));
  const head = facts.map(([k, v]) => `${label(k.padEnd(width))}  ${v}`).join("\n");
  if (run.stages.length === 0) return `${head}\n\nno stages`;
  const rows = run.stages.map((s, i) => {
    const sd = stageDuration(s, now);
    return [
      String(i),
      s.name,
      s.spec.kind,
      `${statusMark(s.status, color)} ${formatStatus(s.status, color)}`,
      sd === undefined ? "-" : formatDuration(sd),
      paint("red", excerpt(s.error, 70), color),
    ];
  });
  const stages = table(["#", "STAGE", "KIND", "STATUS", "DURATION", "ERROR"], rows, {
    alignRight: [0, 4],
    headerStyle: (h) => paint("bold", h, color),
  });
  return [head, stages, approvals(run, now, color), attempts(run, now)].filter(Boolean).join("\n\n");
}

/** Each approval gate: where it stands, and every decision (refused ones with why). */
function approvals(run: Run, now: number, color: boolean): string {
  const lines = run.stages.flatMap((s) => {
    const state = gateState(s.gate);
    if (!s.gate?.rule || !state) return [];
    const deadline = state === "waiting" ? ` (until ${new Date(s.gate.rule.expiresAt).toISOString()}; \`hoist approve ${run.id}\`)` : "";
    return [
      `${paint("bold", `approval of ${s.name}`, color)}: ${gateSummary(s.gate, state)}${deadline}`,
      ...s.gate.decisions.map((d) => `  ${formatAge(d.at, now)}  ${d.approve ? "approve" : "reject"} by ${d.by} via ${d.via}${d.reason ? `: ${d.reason}` : ""}${d.refused ? paint("red", ` (refused: ${d.refused})`, color) : ""}`),
    ];
  });
  return lines.join("\n");
}

/** Earlier attempts of a re-run run, oldest first. */
function attempts(run: Run, now: number): string {
  return (run.attempts ?? [])
    .map((a, i) => `attempt ${i + 1} ${a.status}${a.error ? `: ${excerpt(a.error, 120)}` : ""} (re-run from ${run.stages[a.from]?.name ?? a.from} by ${a.by}, ${formatAge(a.at, now)})`)
    .join("\n");
}

/** The header printed above a stage's log. */
export function stageHeader(index: number, stage: Pick<Stage, "name" | "status" | "startedAt" | "finishedAt">, { now, color }: ViewOptions): string {
  const d = stageDuration(stage, now);
  const facts = [formatStatus(stage.status, color), ...(d === undefined ? [] : [formatDuration(d)])].join(", ");
  return paint("bold", `=== ${index} ${stage.name}`, color) + ` (${facts}) ` + paint("bold", "===", color);
}

// ---------------------------------------------------------------------------------------
// Following logs

/**
 * What to print when a stage's log changed from `before` to `after`. Logs normally only
 * grow; when earlier text was rewritten (the worker appends its own notes after the job's
 * output and rewrites them when the job says more), the text from the first change on is
 * printed again.
 */
export function logDelta(before: string, after: string): string {
  if (after.startsWith(before)) return after.slice(before.length);
  let i = 0;
  while (i < before.length && i < after.length && before[i] === after[i]) i++;
  // Restart at the beginning of the line that changed, so the reprint is readable.
  const lineStart = after.lastIndexOf("\n", i - 1) + 1;
  return after.slice(lineStart);
}

/**
 * Splits streamed text into complete lines, holding back a trailing partial line until its
 * newline arrives (or `flush`), so a prefix can be put before every line exactly once.
 */
export class LineBuffer {
  private pending = "";

  /** Complete lines in `chunk` (with what was held back), without their newlines. */
  push(chunk: string): string[] {
    const text = this.pending + chunk.replace(/\r\n/g, "\n");
    const parts = text.split("\n");
    this.pending = parts.pop() ?? "";
    return parts.map(lastCarriageReturn);
  }

  /** The held-back partial line, if any. */
  flush(): string[] {
    const rest = this.pending;
    this.pending = "";
    return rest === "" ? [] : [lastCarriageReturn(rest)];
  }
}

/** Progress output redraws a line with `\r`; only its last state is worth printing. */
function lastCarriageReturn(line: string): string {
  const i = line.lastIndexOf("\r", line.length - 2);
  return (i >= 0 ? line.slice(i + 1) : line).replace(/\r$/, "");
}

/** Indents every line of `text` under a gutter, e.g. for log lines under a stage. */
export function indent(lines: readonly string[], gutter: string): string {
  return lines.map((l) => gutter + l).join("\n");
}

/** The `hoist releases ENV` table: newest first, with what triggered each and how it ended. */
export function releasesTable(releases: readonly ReleaseRecord[], { now, color }: ViewOptions): string {
  if (releases.length === 0) return "no releases";
  const rows = releases.map((r) => [
    r.id,
    r.image,
    r.digest ? r.digest.slice(0, 19) : "-",
    r.strategy,
    formatStatus(r.status, color) + (r.rolledBack ? paint("dim", " (rolled back)", color) : ""),
    r.trigger.type === "rollback" ? `rollback to ${r.trigger.rollbackOf ?? "?"}` : r.trigger.runId ? `run ${r.trigger.runId}` : `${r.trigger.type} by ${r.trigger.by}`,
    formatAge(r.startedAt, now),
    formatDuration((r.finishedAt ?? now) - r.startedAt),
    r.error
      ? paint("red", excerpt(r.error, 50), color)
      : r.status === "running" && r.checkpoint
        ? paint("dim", `waiting: ${excerpt(r.checkpoint.waiting, 40)}, next look ${r.checkpoint.until > now ? `in ${formatDuration(r.checkpoint.until - now)}` : "due"}`, color)
        : "",
  ]);
  return table(["RELEASE", "IMAGE", "RUNNING", "STRATEGY", "STATUS", "TRIGGER", "AGE", "DURATION", "NOTE"], rows, { alignRight: [7], headerStyle: (h) => paint("bold", h, color) });
}

/** The `hoist env list` table. */
export function environmentsTable(envs: readonly Environment[], color: boolean): string {
  if (envs.length === 0) return "no environments: register one with `hoist env set NAME --engine ... --router ... --backend ...`";
  const rows = envs.map((e) => [
    e.name,
    e.mode,
    e.engine.endpoint,
    `${e.router.admin} ${e.router.backend}`,
    e.protection.repos?.join(",") ?? "any",
    e.protection.branches?.join(",") ?? "any",
    e.protection.approval?.required ? `required${e.protection.approval.approvers.length ? ` (${e.protection.approval.approvers.join(",")})` : ""}` : "-",
  ]);
  return table(["NAME", "MODE", "ENGINE", "ROUTER", "REPOS", "BRANCHES", "APPROVAL"], rows, { headerStyle: (h) => paint("bold", h, color) });
}
