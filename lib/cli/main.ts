import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import type Dockerode from "dockerode";
import { ConfigError, loadConfig, type Config } from "../config.ts";
import { githubPush } from "../demo/payloads.ts";
import { createSampleApp } from "../demo/sample-app.ts";
import type { LocalRuntime } from "../local/runtime.ts";
import { RUN_STATUSES, type Run, type RunStatus, type Stage } from "../pipeline/run.ts";
import { HoistApiError, HoistClient, type RunLogs } from "./client.ts";
import {
  formatDuration,
  formatElapsed,
  formatStatus,
  isFinalRun,
  isFinalStage,
  LineBuffer,
  logDelta,
  environmentsTable,
  newestFirst,
  paint,
  releasesTable,
  pullReference,
  runDetail,
  runDuration,
  runError,
  runsTable,
  stageDuration,
  stageHeader,
  statusMark,
  visibleWidth,
  type Style,
} from "./format.ts";

/**
 * The `hoist` command line: run Hoist locally, look at runs and their logs, and a demo
 * that pushes a sample app through the whole pipeline.
 */

const DEFAULT_URL = "http://127.0.0.1:8080";
const DEFAULT_REGISTRY = "127.0.0.1:5000";
const SERVICES_HINT = "run `bash scripts/services.sh` to start the Docker engine, the registry and the base images";
const POLL_MS = 300;

/** An error whose message is the whole story for the user: printed without a stack. */
class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

// The SDK's notice about its future Node versions says nothing about this command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const stdout = process.stdout;
const color = Boolean(stdout.isTTY) && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";
const paintOut = (style: Style, text: string) => paint(style, text, color);
const print = (text = "") => void stdout.write(text + "\n");

// ---------------------------------------------------------------------------------------
// Program

const program = new Command()
  .name("hoist")
  .description("Hoist: a git push becomes a built, tested, released image.")
  .addOption(new Option("--url <url>", "URL of a running Hoist").env("HOIST_URL").default(DEFAULT_URL))
  .addOption(new Option("--token <token>", "API token of that Hoist (its HOIST_API_TOKEN)").env("HOIST_API_TOKEN"))
  .showHelpAfterError("(run `hoist --help` for usage)")
  .configureOutput({ outputError: (text, write) => write(paint("red", text, Boolean(process.stderr.isTTY))) });

interface Globals {
  url: string;
  token?: string;
}

function globals(): Globals {
  return program.opts<Globals>();
}

function client(): HoistClient {
  const g = globals();
  return new HoistClient({ url: g.url, token: g.token });
}

program
  .command("start")
  .description("run Hoist in the foreground: webhooks + API, worker, reconciler (settings from the environment)")
  .action(async () => {
    await startCommand();
  });

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
    const api = client();
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
      print(JSON.stringify({ runs, ...(page.cursor ? { cursor: page.cursor } : {}) }, null, 2));
      return;
    }
    print(runsTable(runs, { now: Date.now(), color }));
    if (page.cursor) {
      const again = [repo && `--repo ${repo}`, opts.branch && `--branch ${opts.branch}`, opts.status && `--status ${opts.status}`, `--limit ${opts.limit}`];
      print(paintOut("dim", `more: hoist runs ${again.filter(Boolean).join(" ")} --cursor ${page.cursor}`));
    }
  });

const envCommand = program.command("env").description("environments releases go to (registered on the server)");

envCommand
  .command("list")
  .description("list registered environments")
  .option("--json", "print them as JSON")
  .action(async (opts: { json?: boolean }) => {
    const envs = await client().listEnvironments();
    print(opts.json ? JSON.stringify(envs, null, 2) : environmentsTable(envs, color));
  });

interface EnvSetOptions {
  engine: string;
  router: string;
  backend: string;
  mode: "docker" | "swarm";
  registry?: string;
  tls?: string;
  sshKey?: string;
  sshHostKey?: string;
  repos?: string;
  branches?: string;
  approval?: boolean;
  approvers?: string;
}

envCommand
  .command("set")
  .description("register or replace an environment")
  .argument("<name>", "environment name, e.g. staging")
  .requiredOption("--engine <endpoint>", "Docker engine: unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host")
  .requiredOption("--router <address>", "HAProxy runtime API: unix:///run/haproxy/admin.sock or tcp://host:port")
  .requiredOption("--backend <name>", "the HAProxy backend that serves this environment")
  .addOption(new Option("--mode <mode>", "single Docker host or Swarm").choices(["docker", "swarm"]).default("docker"))
  .option("--registry <host:port>", "registry this environment pulls from")
  .option("--tls <ca,cert,key>", "for tcp:// with TLS: paths (on the server) of the CA, client certificate and key, comma-separated")
  .option("--ssh-key <path>", "for ssh://: path (on the server) of the private key")
  .option("--ssh-host-key <fingerprint>", 'for ssh://: the engine host\'s key fingerprint, "SHA256:..." (ssh-keyscan HOST | ssh-keygen -lf -)')
  .option("--repos <globs>", "only these repositories may release here (comma-separated provider:owner/name globs, e.g. github:acme/*)")
  .option("--branches <globs>", "only these branches may release here (comma-separated globs)")
  .option("--approval", "releases here need an approval")
  .option("--approvers <names>", "who may approve (comma-separated)")
  .action(async (name: string, opts: EnvSetOptions) => {
    const split = (v: string | undefined) => (v ?? "").split(",").map((x) => x.trim()).filter(Boolean);
    const [ca = "", cert = "", key = ""] = split(opts.tls);
    const env = await client().putEnvironment({
      name,
      engine: {
        endpoint: opts.engine,
        ...(opts.tls ? { tls: { ca, cert, key } } : {}),
        ...(opts.sshKey || opts.sshHostKey ? { ssh: { key: opts.sshKey ?? "", hostKey: opts.sshHostKey ?? "" } } : {}),
      },
      mode: opts.mode,
      router: { admin: opts.router, backend: opts.backend },
      ...(opts.registry ? { registry: opts.registry } : {}),
      protection: {
        ...(opts.repos ? { repos: split(opts.repos) } : {}),
        ...(opts.branches ? { branches: split(opts.branches) } : {}),
        ...(opts.approval || opts.approvers ? { approval: { required: true, approvers: split(opts.approvers) } } : {}),
      },
    });
    print(environmentsTable([env], color));
  });

program
  .command("releases")
  .description("an environment's release history, newest first")
  .argument("<env>", "environment name")
  .option("--json", "print the history as JSON")
  .action(async (env: string, opts: { json?: boolean }) => {
    const releases = await client().listReleases(env);
    print(opts.json ? JSON.stringify(releases, null, 2) : releasesTable(releases, { now: Date.now(), color }));
  });

program
  .command("rollback")
  .description("redeploy an earlier release as a new release (default: the one before the current)")
  .argument("<env>", "environment name")
  .option("--to <release>", "the release to go back to (see `hoist releases ENV`)")
  .action(async (env: string, opts: { to?: string }) => {
    print(paintOut("dim", `rolling ${env} back${opts.to ? ` to ${opts.to}` : ""}...`));
    const { release, log } = await client().rollback(env, opts.to);
    for (const line of log) print(paintOut("dim", `  ${line}`));
    print(releasesTable([release], { now: Date.now(), color }));
    if (release.status !== "succeeded") throw new CliError(`rollback failed: ${release.error ?? "see the log above"}`);
  });

program
  .command("cancel")
  .description("cancel a run: the stage in flight is undone (its job removed, a release withdrawn) and the rest skipped")
  .argument("<id>", "run id")
  .action(async (id: string) => {
    const { cancelled, run } = await client().cancel(id);
    if (!cancelled) throw new CliError(`run ${id} already ${run.status}: nothing to cancel`);
    print(runDetail(run, { now: Date.now(), color }));
    print(paintOut("dim", `the stage in flight is being undone: follow it with \`hoist logs ${id} --follow\``));
  });

program
  .command("run")
  .description("show one run and its stages")
  .argument("<id>", "run id")
  .option("--json", "print the run as JSON")
  .option("--watch", "redraw until the run is final; exit 0 if it succeeded, 1 otherwise")
  .action(async (id: string, opts: { json?: boolean; watch?: boolean }) => {
    const api = client();
    if (!opts.watch) {
      const run = await api.getRun(id);
      print(opts.json ? JSON.stringify(run, null, 2) : runDetail(run, { now: Date.now(), color }));
      return;
    }
    const run = await watchRun(api, id, Boolean(opts.json));
    if (opts.json) print(JSON.stringify(run, null, 2));
    process.exitCode = run.status === "succeeded" ? 0 : 1;
  });

program
  .command("logs")
  .description("print a run's stage logs")
  .argument("<id>", "run id")
  .option("--stage <n>", "only this stage (index from 0, or name)")
  .option("--follow", "print new output as it arrives until the run is final; exit 0 if it succeeded, 1 otherwise")
  .action(async (id: string, opts: { stage?: string; follow?: boolean }) => {
    const api = client();
    const run = await api.getRun(id);
    const stage = opts.stage === undefined ? undefined : stageIndex(run, opts.stage);
    if (opts.follow) {
      const final = await follow(api, run, { stage, view: logsView() });
      process.exitCode = final.status === "succeeded" ? 0 : 1;
      return;
    }
    const logs = await api.getLogs(id, stage);
    printLogs(run, logs);
  });

program
  .command("demo")
  .description("push a sample app through Hoist and watch it build, test and push (starts Hoist in-process unless --url is given)")
  .option("--registry <host:port>", "registry the in-process Hoist pushes to (env HOIST_REGISTRY)", process.env.HOIST_REGISTRY || DEFAULT_REGISTRY)
  .option("--image <name>", "image name of the sample app", "hoist-demo")
  .option("--timeout <seconds>", "give up after this long", intArg(1, 86_400), 600)
  .option("--test <command>", "the sample app's test command (e.g. `false`, to see a run fail)")
  .option("--keep", "keep the temporary directory (sample repository and data)")
  .action(async (opts: DemoOptions) => {
    process.exitCode = await demoCommand(opts);
  });

// ---------------------------------------------------------------------------------------
// start

async function startCommand(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`${err.message}\nfix the environment variables above and run \`hoist start\` again`);
    throw err;
  }
  const engine = await checkEngine(config.DOCKER_HOST);
  if (!engine.ok) warn(`${engine.problem}: runs will fail until it answers; ${SERVICES_HINT}`);
  if (config.HOIST_REGISTRY) {
    const reg = await checkRegistry(config.HOIST_REGISTRY);
    if (!reg.ok) warn(`${reg.problem}: push stages will fail until it answers; ${SERVICES_HINT}`);
  }

  const runtime = await startRuntime(process.env, config.HOIST_PORT);
  print(`${paintOut("green", "hoist is running at")} ${paintOut("bold", runtime.url)}`);
  print(settingsSummary(config, runtime));
  print(paintOut("dim", "press Ctrl+C to stop"));

  await new Promise<void>((resolve) => {
    let stoppingSince = 0;
    const stop = (signal: NodeJS.Signals) => {
      if (stoppingSince) {
        if (isEcho(stoppingSince)) return;
        warn(`${signal} again: exiting without a clean stop`);
        process.exit(1);
      }
      stoppingSince = Date.now();
      print(paintOut("dim", `${signal}: stopping…`));
      runtime.stop().then(
        () => {
          print("stopped");
          resolve();
        },
        (err: unknown) => {
          warn(`stop failed: ${(err as Error).message}`);
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

/** Which settings are in effect; secrets only as set / not set. */
function settingsSummary(c: Config, runtime: LocalRuntime): string {
  const { url } = runtime;
  const live = runtime.services.config;
  const set = (v: unknown) => (v ? paintOut("green", "set") : paintOut("yellow", "not set"));
  const count = (xs: readonly string[]) => (xs.length ? paintOut("green", xs.length === 1 ? "set" : `set (${xs.length})`) : paintOut("yellow", "not set"));
  const embedded = !(c.AWS_ENDPOINT_URL_DYNAMODB && (c.AWS_ENDPOINT_URL_SQS || c.HOIST_QUEUE_URL));
  const rows: [string, string][] = [
    ["webhooks", `${url}/hooks/github, ${url}/hooks/gitlab`],
    ["API", `${url}/api/runs`],
    [
      "data",
      embedded
        ? `${c.HOIST_DATA_DIR} (embedded DynamoDB at ${live.AWS_ENDPOINT_URL_DYNAMODB}, SQS at ${live.AWS_ENDPOINT_URL_SQS})`
        : `DynamoDB at ${c.AWS_ENDPOINT_URL_DYNAMODB}, SQS at ${c.HOIST_QUEUE_URL ?? c.AWS_ENDPOINT_URL_SQS}`,
    ],
    ["table / queue", `${c.HOIST_TABLE} / ${c.HOIST_QUEUE}`],
    ["HOIST_API_TOKEN", c.HOIST_API_TOKEN ? set(true) : `${set(false)} (the API answers 503)`],
    ["GITHUB_WEBHOOK_SECRET", c.GITHUB_WEBHOOK_SECRET.length ? count(c.GITHUB_WEBHOOK_SECRET) : `${set(false)} (GitHub webhooks answer 503)`],
    ["GITLAB_WEBHOOK_TOKEN", c.GITLAB_WEBHOOK_TOKEN.length ? count(c.GITLAB_WEBHOOK_TOKEN) : `${set(false)} (GitLab webhooks answer 503)`],
    ["GITHUB_TOKEN", set(c.GITHUB_TOKEN)],
    ["GITLAB_TOKEN", set(c.GITLAB_TOKEN)],
    ["HOIST_REGISTRY", c.HOIST_REGISTRY ?? `${paintOut("yellow", "not set")} (push stages must name a registry)`],
    ["HOIST_ALLOW_LOCAL_REPOS", c.HOIST_ALLOW_LOCAL_REPOS ? "yes (file:// repositories accepted)" : "no"],
    ["DOCKER_HOST", c.DOCKER_HOST ?? "unix:///var/run/docker.sock (default)"],
    ["HOIST_BUILDER_IMAGE", c.HOIST_BUILDER_IMAGE],
    ["worker", `${c.HOIST_WORKER_CONCURRENCY} at a time, lease ${formatDuration(c.HOIST_LEASE_MS)}, step budget ${formatDuration(c.HOIST_STEP_BUDGET_MS)}`],
    ["reconciler", `every ${formatDuration(c.HOIST_RECONCILE_EVERY_MS)}, re-drive after ${formatDuration(c.HOIST_REDRIVE_AFTER_MS)}`],
    ["HOIST_LOG_LEVEL", c.HOIST_LOG_LEVEL],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${paintOut("dim", k.padEnd(width))}  ${v}`).join("\n");
}

/**
 * startLocal, with a listen failure (port in use, no permission) reported as what to do:
 * the HTTP server reports it as an 'error' event, which nothing in startLocal listens to.
 */
async function startRuntime(env: Record<string, string | undefined>, port: number): Promise<LocalRuntime> {
  const { startLocal } = await import("../local/runtime.ts");
  const onListenError = (err: NodeJS.ErrnoException) => {
    if (err.code === "EADDRINUSE" || err.code === "EACCES") {
      fail(
        new CliError(
          err.code === "EADDRINUSE"
            ? `port ${port} is already in use (another \`hoist start\`?): stop it, or set HOIST_PORT to a free port (0 picks one)`
            : `no permission to listen on port ${port}: set HOIST_PORT to a port above 1023`,
        ),
      );
      return;
    }
    throw err;
  };
  process.on("uncaughtException", onListenError);
  try {
    return await startLocal(env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  } finally {
    process.off("uncaughtException", onListenError);
  }
}

// ---------------------------------------------------------------------------------------
// run --watch

async function watchRun(api: HoistClient, id: string, quiet: boolean): Promise<Run> {
  let drawnRows = 0;
  let lastKey = "";
  for (;;) {
    const run = await api.getRun(id);
    const final = isFinalRun(run.status);
    if (!quiet) {
      const text = runDetail(run, { now: Date.now(), color });
      if (stdout.isTTY) {
        // Move up over the previous drawing and erase it, then draw again.
        if (drawnRows) stdout.write(`\x1b[${drawnRows}F\x1b[J`);
        stdout.write(text + "\n");
        drawnRows = rowsOf(text, stdout.columns || 80);
      } else {
        // Not a terminal: print a new view only when something changed.
        const key = [run.status, ...run.stages.map((s) => s.status)].join(",");
        if (key !== lastKey || final) print((lastKey ? "\n" : "") + text);
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

// ---------------------------------------------------------------------------------------
// logs

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

function printLogs(run: Run, logs: RunLogs): void {
  const now = Date.now();
  if (logs.stages.length === 0) {
    print(paintOut("dim", `run ${run.id} has no stages${runError(run) ? `: ${runError(run)}` : ""}`));
    return;
  }
  for (const log of logs.stages) {
    const stage = run.stages[log.stage];
    print(stageHeader(log.stage, stage ?? { name: log.name, status: log.status }, { now, color }));
    if (log.text) stdout.write(log.text.endsWith("\n") ? log.text : log.text + "\n");
    else print(paintOut("dim", log.status === "pending" ? "(not started)" : "(no output)"));
    if (stage?.error) print(paintOut("red", `error: ${stage.error}`));
  }
}

/** How a follower shows progress; `logs --follow` and `demo` differ only in this. */
interface FollowView {
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
async function follow(
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

function logsView(): FollowView {
  return {
    stageStart: (i, stage) => print(paintOut("bold", `=== ${i} ${stage.name} ===`)),
    lines: (_i, _stage, lines) => print(lines.join("\n")),
    stageEnd: (i, stage, started) => {
      const d = stageDuration(stage, Date.now());
      if (!started) print(paintOut("bold", `=== ${i} ${stage.name} ===`));
      print(`${statusMark(stage.status, color)} ${stage.name} ${formatStatus(stage.status, color)}${d === undefined ? "" : ` in ${formatDuration(d)}`}`);
      if (stage.error) print(paintOut("red", `error: ${stage.error}`));
    },
  };
}

// ---------------------------------------------------------------------------------------
// demo

interface DemoOptions {
  registry: string;
  image: string;
  timeout: number;
  test?: string;
  keep?: boolean;
}

async function demoCommand(opts: DemoOptions): Promise<number> {
  const source = program.getOptionValueSource("url");
  const remote = source === "cli" || source === "env";
  const g = globals();
  let secret: string | undefined;
  let token: string | undefined;
  if (remote) {
    secret = process.env.GITHUB_WEBHOOK_SECRET?.split(",").map((s) => s.trim()).find(Boolean);
    token = g.token;
    const missing = [!secret && "GITHUB_WEBHOOK_SECRET (one of the server's webhook secrets)", !token && "HOIST_API_TOKEN (the server's API token)"].filter(Boolean);
    if (missing.length) throw new CliError(`to run the demo against ${g.url}, set ${missing.join(" and ")}; or drop --url/HOIST_URL to run Hoist in-process`);
    const api = new HoistClient({ url: g.url, token });
    if (!(await api.healthy())) throw new CliError(`cannot reach Hoist at ${g.url}: is \`hoist start\` running at ${g.url}? (or drop --url/HOIST_URL to run Hoist in-process)`);
  } else {
    // Fail before starting anything when what the pipeline drives is not there.
    const problems = await checkServices(process.env.DOCKER_HOST, opts.registry, process.env.HOIST_BUILDER_IMAGE || "hoist/builder:latest");
    if (problems.length) throw new CliError(`${problems.join("\n")}\n${SERVICES_HINT}`);
  }

  const dir = await mkdtemp(join(tmpdir(), "hoist-demo-"));
  let runtime: LocalRuntime | undefined;
  let runId: string | undefined;
  // Ctrl+C stops watching; cleaning up happens below, once the current step returns.
  const abort = new AbortController();
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) {
      if (isEcho(firstSignalAt)) return;
      process.exit(130); // a second Ctrl+C: do not wait for the cleanup
    }
    firstSignalAt = Date.now();
    warn(`${signal}: stopping the demo (again to quit at once)`);
    abort.abort();
  };
  const checkpoint = () => {
    if (abort.signal.aborted) throw abort.signal.reason;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    let url = g.url;
    if (!remote) {
      secret = randomBytes(24).toString("base64url");
      token = randomBytes(24).toString("base64url");
      const env: Record<string, string | undefined> = {
        ...process.env,
        HOIST_ALLOW_LOCAL_REPOS: "1",
        GITHUB_WEBHOOK_SECRET: secret,
        HOIST_API_TOKEN: token,
        HOIST_REGISTRY: opts.registry,
        HOIST_DATA_DIR: join(dir, "data"),
        HOIST_PORT: "0",
        // The demo's output is the progress below; the runtime only speaks up when something is wrong.
        HOIST_LOG_LEVEL: process.env.HOIST_LOG_LEVEL || "warn",
      };
      // Always the embedded table and queue in the temp dir, whatever this shell points at.
      delete env.AWS_ENDPOINT_URL_DYNAMODB;
      delete env.AWS_ENDPOINT_URL_SQS;
      delete env.HOIST_QUEUE_URL;
      runtime = await startRuntime(env, 0);
      url = runtime.url;
      print(`${paintOut("dim", "started Hoist in-process at")} ${url} ${paintOut("dim", `(registry ${opts.registry}, data in ${join(dir, "data")})`)}`);
    }
    checkpoint();
    const api = new HoistClient({ url, token });

    const app = await createSampleApp(join(dir, "app"), { image: opts.image, ...(opts.test ? { test: opts.test } : {}) });
    print(`${paintOut("dim", "sample app")} ${app.path} ${paintOut("dim", `(branch ${app.branch}, commit ${app.sha.slice(0, 12)})`)}`);

    const body = githubPush({ path: app.path, sha: app.sha, ref: `refs/heads/${app.branch}`, fullName: `demo/${opts.image}` });
    const delivery = randomUUID();
    print(`→ POST ${url}/hooks/github  X-GitHub-Event: push  X-GitHub-Delivery: ${delivery}  X-Hub-Signature-256: sha256=…`);
    const t0 = Date.now();
    let sent;
    try {
      sent = await api.sendGitHub(body, { secret: secret!, delivery });
    } catch (err) {
      if (err instanceof HoistApiError && err.status === 502 && remote)
        throw new CliError(`${err.message}\nthe server must run on this machine with HOIST_ALLOW_LOCAL_REPOS=1 to read the sample repository`);
      throw err;
    }
    print(`← ${sent.status} ${JSON.stringify(sent.answer)}`);
    if (!("runs" in sent.answer) || sent.answer.runs.length === 0)
      throw new CliError(`the push created no run (${"ignored" in sent.answer ? sent.answer.ignored : "no pipeline matched"})`);

    const created = sent.answer.runs[0]!;
    runId = created.id;
    checkpoint();
    const first = await api.getRun(created.id);
    const elapsed = () => paintOut("dim", formatElapsed(Date.now() - t0));
    const gutter = " ".repeat(visibleWidth(formatElapsed(0)) + 1) + paintOut("dim", "│ ");
    print(`${elapsed()} run ${paintOut("bold", first.id)}: pipeline ${first.pipeline}, ${first.stages.map((s) => s.name).join(" → ") || "no stages"}`);
    const run = await follow(api, first, {
      deadline: t0 + opts.timeout * 1000,
      signal: abort.signal,
      view: {
        // The final status is the summary's first line below.
        runStatus: (r) => void (isFinalRun(r.status) || print(`${elapsed()} ${statusMark(r.status, color)} run ${formatStatus(r.status, color)}`)),
        stageStart: (_i, stage) => print(`${elapsed()} ${statusMark("running", color)} ${paintOut("bold", stage.name)} started`),
        lines: (_i, _stage, lines) => print(lines.map((l) => gutter + l).join("\n")),
        stageEnd: (_i, stage) => {
          const d = stageDuration(stage, Date.now());
          const took = d === undefined ? "" : ` in ${formatDuration(d)}`;
          print(`${elapsed()} ${statusMark(stage.status, color)} ${paintOut("bold", stage.name)} ${formatStatus(stage.status, color)}${took}`);
          if (stage.error) print(`${gutter}${paintOut("red", stage.error)}`);
        },
      },
    });

    print();
    const d = runDuration(run, Date.now());
    print(`run ${run.id} ${formatStatus(run.status, color)}${d === undefined ? "" : ` in ${formatDuration(d)}`} ${paintOut("dim", `(${formatDuration(Date.now() - t0)} from push to done)`)}`);
    if (run.status === "succeeded") {
      const pull = pullReference(run);
      if (run.image) print(`  image   ${run.image}`);
      if (run.digest) print(`  digest  ${paintOut("bold", run.digest)}`);
      if (pull) {
        print(`  pushed  ${pull}`);
        print(`pull it:  docker pull ${pull}`);
        print(`run it:   docker run --rm -p 8080:8080 ${pull}   # then open http://127.0.0.1:8080/`);
      }
    } else {
      const error = runError(run);
      if (error) print(paintOut("red", `error: ${error}`));
      const hint = servicesHintFor(error);
      if (hint) print(hint);
      if (remote) print(`see the logs with: hoist logs ${run.id}`);
    }
    if (opts.keep) print(paintOut("dim", `kept ${dir}`));
    return run.status === "succeeded" ? 0 : 1;
  } catch (err) {
    if (!abort.signal.aborted) throw err;
    if (runId && remote) warn(`run ${runId} goes on on the server: \`hoist run ${runId} --watch\``);
    if (runtime) {
      // The worker may be waiting on a job: remove the jobs, give the stop a moment, and
      // remove again whatever the worker re-created meanwhile.
      const rt = runtime;
      runtime = undefined;
      if (runId) await removeJobs(rt, runId);
      await withTimeout(rt.stop(), 3_000).catch(() => undefined);
      if (runId) await removeJobs(rt, runId);
    }
    return 130;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await runtime?.stop().catch((err: unknown) => warn(`stopping Hoist failed: ${(err as Error).message}`));
    if (!opts.keep) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Job containers outlive the worker that started them (so another worker can re-attach);
 * an interrupted in-process demo has no other worker, so it removes its run's jobs itself.
 */
async function removeJobs(runtime: LocalRuntime, runId: string): Promise<void> {
  const stored = await runtime.services.store.getRun(runId).catch(() => undefined);
  const jobs = (stored?.run.stages ?? []).flatMap((s) => (s.job && s.finishedAt === undefined ? [s.job] : []));
  const removed = await Promise.all(
    jobs.map(async (job) => ((await runtime.services.engine.inspectJob(job).catch(() => undefined))?.state === "missing" ? [] : [job])),
  );
  const present = removed.flat();
  await Promise.all(present.map((job) => runtime.services.engine.removeJob(job).catch(() => undefined)));
  if (present.length) warn(`removed the unfinished job container(s) ${present.join(", ")}`);
}

/** A run error that smells of a missing engine or registry gets the fix appended. */
function servicesHintFor(error: string | undefined): string | undefined {
  if (!error) return undefined;
  if (/docker\.sock|ECONNREFUSED|ENOENT|connect|no such image|not found: hoist\/|registry|manifest unknown/i.test(error)) return SERVICES_HINT;
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Engine and registry checks

type Check = { ok: true } | { ok: false; problem: string };

/** Loaded on first use: dockerode takes longer to load than most commands take to run. */
async function dockerClient(host: string | undefined): Promise<{ docker: Dockerode; where: string }> {
  const { default: Dockerode } = await import("dockerode");
  if (!host) return { docker: new Dockerode({ socketPath: "/var/run/docker.sock" }), where: "/var/run/docker.sock" };
  const u = new URL(host);
  if (u.protocol === "unix:") return { docker: new Dockerode({ socketPath: u.pathname }), where: u.pathname };
  return { docker: new Dockerode({ host: u.hostname, port: u.port || 2375, protocol: "http" }), where: host };
}

async function checkEngine(host: string | undefined): Promise<Check & { docker?: Dockerode }> {
  let docker: Dockerode;
  let where: string;
  try {
    ({ docker, where } = await dockerClient(host));
  } catch {
    return { ok: false, problem: `DOCKER_HOST=${host} is not a unix:// or tcp:// address` };
  }
  try {
    await withTimeout(docker.ping(), 5_000);
    return { ok: true, docker };
  } catch (err) {
    return { ok: false, problem: `the Docker engine is not reachable at ${where} (${(err as Error).message})` };
  }
}

async function checkRegistry(registry: string): Promise<Check> {
  const url = `http://${registry}/v2/`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    if (res.status === 200 || res.status === 401) return { ok: true };
    return { ok: false, problem: `the registry at ${registry} answered ${res.status} on /v2/` };
  } catch (err) {
    const e = err as { cause?: { code?: string }; message?: string };
    return { ok: false, problem: `the registry is not reachable at ${registry} (${e.cause?.code ?? e.message})` };
  }
}

/** Everything the demo's pipeline needs locally: engine, base images, registry. */
async function checkServices(dockerHost: string | undefined, registry: string, builderImage: string): Promise<string[]> {
  const [engine, reg] = await Promise.all([checkEngine(dockerHost), checkRegistry(registry)]);
  const problems: string[] = [];
  if (!engine.ok) problems.push(engine.problem);
  else if (engine.docker) {
    for (const image of ["hoist/busybox:latest", builderImage]) {
      const present = await engine.docker
        .getImage(image)
        .inspect()
        .then(
          () => true,
          () => false,
        );
      if (!present) problems.push(`the base image ${image} is missing`);
    }
  }
  if (!reg.ok) problems.push(reg.problem);
  return problems;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${ms / 1000}s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------
// Plumbing

function intArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/**
 * Ctrl+C reaches both this process and the bin wrapper (scripts/hoist.mjs), which forwards
 * what it gets: a second signal right after the first is that echo, not a second Ctrl+C.
 */
function isEcho(firstAt: number): boolean {
  return Date.now() - firstAt < 500;
}

function warn(message: string): void {
  process.stderr.write(paint("yellow", `hoist: ${message}`, Boolean(process.stderr.isTTY)) + "\n");
}

function fail(err: unknown): never {
  const known = err instanceof CliError || err instanceof HoistApiError;
  const message = known ? (err as Error).message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(paint("red", `hoist: ${message}`, Boolean(process.stderr.isTTY)) + "\n");
  process.exit(err instanceof CliError ? err.exitCode : 1);
}

// `hoist runs | head` closes the pipe early: that is not an error.
stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  fail(err);
}
// A library handle left open (an idle socket, a worker) must not keep a finished command alive.
setTimeout(() => process.exit(), 3_000).unref();

