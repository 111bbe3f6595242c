import { userInfo } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { Option, type Command } from "commander";
import type { Run } from "../pipeline/run.ts";
import { RUN_STATUSES, type RunStatus } from "../pipeline/statuses.ts";
import type { HoistClient, RunLogs } from "./client.ts";
import type { CliContext } from "./context.ts";
import { follow, type FollowView } from "./follow.ts";
import {
  formatDuration,
  formatStatus,
  isFinalRun,
  newestFirst,
  runDetail,
  runError,
  runsTable,
  stageDuration,
  stageHeader,
  statusMark,
  visibleWidth,
} from "./format.ts";
import { CliError, intArg, type Output } from "./output.ts";

/** Who runs the command, as a decision or a manual run records it. */
function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return "cli";
  }
}

function collectParam(value: string, into: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq < 1) throw new CliError(`--param takes key=value, got "${value}"`);
  return { ...into, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** `hoist runs`, `run`, `logs`, `cancel`, `approve`, `rerun` and `trigger`: runs, what they printed, and what people do to them. */
export function registerRuns(program: Command, ctx: CliContext): void {
  const { out } = ctx;

  program
    .command("runs")
    .description("list runs, newest first")
    .option("--repo <[provider:]owner/name>", "only runs of this repository (github:owner/name, gitlab:group/project; without a prefix GitHub, then GitLab)")
    .option("--branch <branch>", "only runs of this branch")
    .addOption(new Option("--status <status>", "only runs with this status").choices(RUN_STATUSES))
    .option("--limit <n>", "at most this many runs (1-200)", intArg(1, 200), 20)
    .option("--cursor <cursor>", "the next page, as printed after a full page")
    .option("--json", "print the API's answer as JSON")
    .action(async (opts: { repo?: string; branch?: string; status?: RunStatus; limit: number; cursor?: string; json?: boolean }) => {
      const api = ctx.client();
      const filter = { branch: opts.branch, status: opts.status, limit: opts.limit, cursor: opts.cursor };
      let repo = opts.repo;
      let page;
      if (repo && !/^(github|gitlab):/.test(repo)) {
        // The API keys repositories by provider; a bare name is tried on GitHub, then GitLab.
        const bare = repo;
        page = await api.listRuns({ ...filter, repo: (repo = `github:${bare}`) });
        if (page.runs.length === 0 && !opts.cursor) page = await api.listRuns({ ...filter, repo: (repo = `gitlab:${bare}`) });
      } else {
        page = await api.listRuns({ ...filter, repo });
      }
      const runs = newestFirst(page.runs);
      if (opts.json) {
        out.print(JSON.stringify({ runs, ...(page.cursor ? { cursor: page.cursor } : {}) }, null, 2));
        return;
      }
      out.print(runsTable(runs, { now: Date.now(), color: out.color }));
      if (page.cursor) {
        const again = [repo && `--repo ${repo}`, opts.branch && `--branch ${opts.branch}`, opts.status && `--status ${opts.status}`, `--limit ${opts.limit}`];
        out.print(out.paint("dim", `more: hoist runs ${again.filter(Boolean).join(" ")} --cursor ${page.cursor}`));
      }
    });

  program
    .command("cancel")
    .description("cancel a run: the stage in flight is undone (its job removed, a release withdrawn) and the rest skipped")
    .argument("<id>", "run id")
    .action(async (id: string) => {
      const { cancelled, run } = await ctx.client().cancel(id);
      if (!cancelled) throw new CliError(`run ${id} already ${run.status}: nothing to cancel`);
      out.print(runDetail(run, { now: Date.now(), color: out.color }));
      out.print(out.paint("dim", `the stage in flight is being undone: follow it with \`hoist logs ${id} --follow\``));
    });

  program
    .command("approve")
    .description("approve the stage a run waits at (or reject it: the run fails with your reason)")
    .argument("<id>", "run id")
    .option("--reject", "reject instead of approving")
    .option("--reason <text>", "why (recorded with the decision)")
    .option("--as <name>", "who decides, as the approvers list names you (default: your user name)", userName())
    .action(async (id: string, opts: { reject?: boolean; reason?: string; as: string }) => {
      const answer = await ctx.client().approve(id, { by: opts.as, ...(opts.reject ? { reject: true } : {}), ...(opts.reason ? { reason: opts.reason } : {}) });
      out.print(answer.outcome === "duplicate" ? `you have decided on run ${id} already: ${answer.summary}` : `run ${id}: ${answer.summary}`);
    });

  program
    .command("rerun")
    .description("run a failed or cancelled run again from its failed stage (or --from one before it); the built image is reused")
    .argument("<id>", "run id")
    .option("--from <stage>", "the stage to start from: its name (test, deploy-2) or number")
    .option("--as <name>", "who asks, as the run's history records it (default: your user name)", userName())
    .action(async (id: string, opts: { from?: string; as: string }) => {
      const from = opts.from === undefined ? undefined : /^\d+$/.test(opts.from) ? Number(opts.from) : opts.from;
      const run = await ctx.client().rerun(id, opts.as, from);
      out.print(runDetail(run, { now: Date.now(), color: out.color }));
      out.print(out.paint("dim", `attempt ${(run.attempts?.length ?? 0) + 1}: follow it with \`hoist run ${id} --watch\``));
    });

  program
    .command("trigger")
    .description("start a pipeline by hand (its .hoist.yml must say `on: { manual: true }`)")
    .argument("<pipeline>", "pipeline name in .hoist.yml")
    .requiredOption("--repo <provider:owner/name>", "the repository, e.g. github:acme/shop")
    .requiredOption("--ref <ref>", "a branch, tag or commit sha")
    .option("--param <key=value>", "a parameter, given to the run's test stages as an environment variable (repeatable)", collectParam, {})
    .option("--as <name>", "who starts it (default: your user name)", userName())
    .action(async (pipeline: string, opts: { repo: string; ref: string; param: Record<string, string>; as: string }) => {
      const run = await ctx.client().trigger(opts.repo, pipeline, { by: opts.as, ref: opts.ref, params: opts.param });
      out.print(runDetail(run, { now: Date.now(), color: out.color }));
      out.print(out.paint("dim", `follow it with \`hoist run ${run.id} --watch\``));
    });

  program
    .command("run")
    .description("show one run and its stages")
    .argument("<id>", "run id")
    .option("--json", "print the run as JSON")
    .option("--watch", "redraw until the run is final; exit 0 if it succeeded, 1 otherwise")
    .action(async (id: string, opts: { json?: boolean; watch?: boolean }) => {
      const api = ctx.client();
      if (!opts.watch) {
        const run = await api.getRun(id);
        out.print(opts.json ? JSON.stringify(run, null, 2) : runDetail(run, { now: Date.now(), color: out.color }));
        return;
      }
      const run = await watchRun(api, id, Boolean(opts.json), out);
      if (opts.json) out.print(JSON.stringify(run, null, 2));
      process.exitCode = run.status === "succeeded" ? 0 : 1;
    });

  program
    .command("logs")
    .description("print a run's stage logs")
    .argument("<id>", "run id")
    .option("--stage <n>", "only this stage (index from 0, or name)")
    .option("--follow", "print new output as it arrives until the run is final; exit 0 if it succeeded, 1 otherwise")
    .action(async (id: string, opts: { stage?: string; follow?: boolean }) => {
      const api = ctx.client();
      const run = await api.getRun(id);
      const stage = opts.stage === undefined ? undefined : stageIndex(run, opts.stage);
      if (opts.follow) {
        const final = await follow(api, run, { stage, view: logsView(out) });
        process.exitCode = final.status === "succeeded" ? 0 : 1;
        return;
      }
      printLogs(run, await api.getLogs(id, stage), out);
    });
}

async function watchRun(api: HoistClient, id: string, quiet: boolean, out: Output): Promise<Run> {
  const { stdout } = out;
  let drawnRows = 0;
  let lastKey = "";
  for (;;) {
    const run = await api.getRun(id);
    const final = isFinalRun(run.status);
    if (!quiet) {
      const text = runDetail(run, { now: Date.now(), color: out.color });
      if (stdout.isTTY) {
        // Move up over the previous drawing and erase it, then draw again.
        if (drawnRows) stdout.write(`\x1b[${drawnRows}F\x1b[J`);
        stdout.write(text + "\n");
        drawnRows = rowsOf(text, stdout.columns || 80);
      } else {
        // Not a terminal: print a new view only when something changed.
        const key = [run.status, ...run.stages.map((s) => s.status)].join(",");
        if (key !== lastKey || final) out.print((lastKey ? "\n" : "") + text);
        lastKey = key;
      }
    }
    if (final) return run;
    await sleep(stdout.isTTY ? 500 : 1000);
  }
}

function rowsOf(text: string, columns: number): number {
  return text.split("\n").reduce((n, line) => n + Math.max(1, Math.ceil(visibleWidth(line) / columns)), 0);
}

function stageIndex(run: Run, stage: string): number {
  if (/^\d+$/.test(stage)) {
    const i = Number(stage);
    if (i >= run.stages.length)
      throw new CliError(`run ${run.id} has ${run.stages.length} stage(s) (0-${run.stages.length - 1}): ${run.stages.map((s, j) => `${j} ${s.name}`).join(", ")}`);
    return i;
  }
  const i = run.stages.findIndex((s) => s.name === stage);
  if (i < 0) throw new CliError(`run ${run.id} has no stage "${stage}"; its stages: ${run.stages.map((s, j) => `${j} ${s.name}`).join(", ") || "none"}`);
  return i;
}

function printLogs(run: Run, logs: RunLogs, out: Output): void {
  const now = Date.now();
  if (logs.stages.length === 0) {
    out.print(out.paint("dim", `run ${run.id} has no stages${runError(run) ? `: ${runError(run)}` : ""}`));
    return;
  }
  for (const log of logs.stages) {
    const stage = run.stages[log.stage];
    out.print(stageHeader(log.stage, stage ?? { name: log.name, status: log.status }, { now, color: out.color }));
    if (log.text) out.stdout.write(log.text.endsWith("\n") ? log.text : log.text + "\n");
    else out.print(out.paint("dim", log.status === "pending" ? "(not started)" : "(no output)"));
    if (stage?.error) out.print(out.paint("red", `error: ${stage.error}`));
  }
}

function logsView(out: Output): FollowView {
  const { color } = out;
  return {
    stageStart: (i, stage) => out.print(out.paint("bold", `=== ${i} ${stage.name} ===`)),
    lines: (_i, _stage, lines) => out.print(lines.join("\n")),
    stageEnd: (i, stage, started) => {
      const d = stageDuration(stage, Date.now());
      if (!started) out.print(out.paint("bold", `=== ${i} ${stage.name} ===`));
      out.print(`${statusMark(stage.status, color)} ${stage.name} ${formatStatus(stage.status, color)}${d === undefined ? "" : ` in ${formatDuration(d)}`}`);
      if (stage.error) out.print(out.paint("red", `error: ${stage.error}`));
    },
  };
}
