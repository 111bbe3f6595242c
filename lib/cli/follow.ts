import { setTimeout as sleep } from "node:timers/promises";
import type { Run, Stage } from "../pipeline/run.ts";
import type { RunStatus } from "../pipeline/statuses.ts";
import type { HoistClient } from "./client.ts";
import { isFinalRun, isFinalStage, LineBuffer, logDelta } from "./format.ts";
import { CliError } from "./output.ts";

const POLL_MS = 300;

/** How a follower shows progress; `logs --follow` and `demo` differ only in this. */
export interface FollowView {
  runStatus?(run: Run): void;
  stageStart(index: number, stage: Stage): void;
  lines(index: number, stage: Stage, lines: string[]): void;
  stageEnd(index: number, stage: Stage, started: boolean): void;
}

/**
 * Polls the run and its logs until the run is final, telling `view` about each stage in
 * order: its start, each new complete log line, its end. The run is read before its logs,
 * so once the run says a stage ended, the logs read after it hold the stage's last line.
 */
export async function follow(
  api: HoistClient,
  first: Run,
  opts: { stage?: number | undefined; view: FollowView; deadline?: number; signal?: AbortSignal },
): Promise<Run> {
  const seen = new Map<number, string>();
  const buffers = new Map<number, LineBuffer>();
  const started = new Set<number>();
  const ended = new Set<number>();
  let run = first;
  let lastStatus: RunStatus | undefined;
  for (;;) {
    const logs = await api.getLogs(run.id, opts.stage);
    const final = isFinalRun(run.status);
    // A new status shows before the stages it started, a final one after the stages it ended.
    const changed = run.status !== lastStatus;
    lastStatus = run.status;
    if (changed && !final) opts.view.runStatus?.(run);
    for (let i = 0; i < run.stages.length; i++) {
      if (opts.stage !== undefined && i !== opts.stage) continue;
      if (ended.has(i)) continue;
      const stage = run.stages[i]!;
      const text = logs.stages.find((l) => l.stage === i)?.text ?? "";
      const stageOver = isFinalStage(stage.status) || final;
      if (!started.has(i) && (stage.startedAt !== undefined || stage.status === "running" || text !== "")) {
        started.add(i);
        opts.view.stageStart(i, stage);
      }
      let buffer = buffers.get(i);
      if (!buffer) buffers.set(i, (buffer = new LineBuffer()));
      const lines = buffer.push(logDelta(seen.get(i) ?? "", text));
      seen.set(i, text);
      if (stageOver) lines.push(...buffer.flush());
      if (lines.length) opts.view.lines(i, stage, lines);
      if (!stageOver) break; // stages run in order: show the next one once this one ends
      ended.add(i);
      opts.view.stageEnd(i, stage, started.has(i));
    }
    if (changed && final) opts.view.runStatus?.(run);
    if (final) return run;
    if (opts.deadline !== undefined && Date.now() > opts.deadline)
      throw new CliError(`run ${run.id} is still ${run.status} after the deadline; follow it with \`hoist logs ${run.id} --follow\``);
    await sleep(POLL_MS, undefined, opts.signal ? { signal: opts.signal } : {});
    run = await api.getRun(run.id);
  }
}
