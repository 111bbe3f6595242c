import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { processEnv } from "../config.ts";
import type { LocalRuntime } from "../local/runtime.ts";
import { checkServices, withTimeout } from "../cli/checks.ts";
import { HoistClient } from "../cli/client.ts";
import type { Delivery } from "../store/deliveries.ts";
import { SERVICES_HINT, type CliContext } from "../cli/context.ts";
import { follow } from "../cli/follow.ts";
import { formatDuration, formatElapsed, formatStatus, isFinalRun, pullReference, runDuration, runError, stageDuration, statusMark, visibleWidth } from "../cli/format.ts";
import { CliError, intArg, isEcho } from "../cli/output.ts";
import { startRuntime } from "../cli/runtime.ts";
import { githubPush } from "./payloads.ts";
import { createSampleApp } from "./sample-app.ts";

/**
 * `hoist demo`: pushes a sample app through a Hoist (in this process unless --url or
 * HOIST_URL names one) and shows it build, test and push, as a user's push would.
 */

interface DemoOptions {
  registry: string;
  image: string;
  timeout: number;
  test?: string;
  keep?: boolean;
}

export function registerDemo(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .description("push a sample app through Hoist and watch it build, test and push (starts Hoist in-process unless --url is given)")
    .option("--registry <host:port>", "registry the in-process Hoist pushes to (env HOIST_REGISTRY)", ctx.cli.HOIST_REGISTRY)
    .option("--image <name>", "image name of the sample app", "hoist-demo")
    .option("--timeout <seconds>", "give up after this long", intArg(1, 86_400), 600)
    .option("--test <command>", "the sample app's test command (e.g. `false`, to see a run fail)")
    .option("--keep", "keep the temporary directory (sample repository and data)")
    .action(async (opts: DemoOptions) => {
      process.exitCode = await demoCommand(opts, ctx);
    });
}

async function demoCommand(opts: DemoOptions, ctx: CliContext): Promise<number> {
  const { cli, out } = ctx;
  const { color } = out;
  const target = ctx.target();
  const { remote } = target;
  let secret: string | undefined;
  let token: string | undefined;
  if (remote) {
    secret = cli.GITHUB_WEBHOOK_SECRET[0];
    token = target.token;
    const missing = [!secret && "GITHUB_WEBHOOK_SECRET (one of the server's webhook secrets)", !token && "HOIST_API_TOKEN (the server's API token)"].filter(Boolean);
    if (missing.length) throw new CliError(`to run the demo against ${target.url}, set ${missing.join(" and ")}; or drop --url/HOIST_URL to run Hoist in-process`);
    const api = new HoistClient({ url: target.url, token });
    if (!(await api.healthy())) throw new CliError(`cannot reach Hoist at ${target.url}: is \`hoist start\` running at ${target.url}? (or drop --url/HOIST_URL to run Hoist in-process)`);
  } else {
    // Fail before starting anything when what the pipeline drives is not there.
    const problems = await checkServices(cli.DOCKER_HOST, opts.registry, cli.HOIST_BUILDER_IMAGE);
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
    out.warn(`${signal}: stopping the demo (again to quit at once)`);
    abort.abort();
  };
  const checkpoint = () => {
    if (abort.signal.aborted) throw abort.signal.reason;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    let url = target.url;
    if (!remote) {
      secret = randomBytes(24).toString("base64url");
      token = randomBytes(24).toString("base64url");
      const env: Record<string, string | undefined> = {
        ...processEnv(),
        HOIST_ALLOW_LOCAL_REPOS: "1",
        GITHUB_WEBHOOK_SECRET: secret,
        HOIST_API_TOKEN: token,
        HOIST_REGISTRY: opts.registry,
        HOIST_DATA_DIR: join(dir, "data"),
        HOIST_PORT: "0",
        // The demo's output is the progress below; the runtime only speaks up when something is wrong.
        HOIST_LOG_LEVEL: cli.HOIST_LOG_LEVEL ?? "warn",
      };
      // Always the embedded table and queue in the temp dir, whatever this shell points at.
      delete env.AWS_ENDPOINT_URL_DYNAMODB;
      delete env.AWS_ENDPOINT_URL_SQS;
      delete env.HOIST_QUEUE_URL;
      runtime = await startRuntime(env, 0, out);
      url = runtime.url;
      out.print(`${out.paint("dim", "started Hoist in-process at")} ${url} ${out.paint("dim", `(registry ${opts.registry}, data in ${join(dir, "data")})`)}`);
    }
    checkpoint();
    const api = new HoistClient({ url, token });

    const app = await createSampleApp(join(dir, "app"), { image: opts.image, ...(opts.test ? { test: opts.test } : {}) });
    out.print(`${out.paint("dim", "sample app")} ${app.path} ${out.paint("dim", `(branch ${app.branch}, commit ${app.sha.slice(0, 12)})`)}`);

    const body = githubPush({ path: app.path, sha: app.sha, ref: `refs/heads/${app.branch}`, fullName: `demo/${opts.image}` });
    const delivery = randomUUID();
    out.print(`→ POST ${url}/hooks/github  X-GitHub-Event: push  X-GitHub-Delivery: ${delivery}  X-Hub-Signature-256: sha256=…`);
    const t0 = Date.now();
    const sent = await api.sendGitHub(body, { secret: secret!, delivery });
    out.print(`← ${sent.status} ${JSON.stringify(sent.answer)}`);
    if (!("delivery" in sent.answer)) throw new CliError(`the push was not taken (${"ignored" in sent.answer ? sent.answer.ignored : "a ping's answer"})`);
    // The webhook only records the delivery; a worker reads .hoist.yml and makes the runs.
    const made = await resolvedDelivery(api, sent.answer.delivery.id, t0 + opts.timeout * 1000);
    if (!made.runs?.length) throw new CliError(`the push created no run (${made.reason ?? made.status})`);
    const created = made.runs[0]!;
    runId = created.id;
    checkpoint();
    const first = await api.getRun(created.id);
    const elapsed = () => out.paint("dim", formatElapsed(Date.now() - t0));
    const gutter = " ".repeat(visibleWidth(formatElapsed(0)) + 1) + out.paint("dim", "│ ");
    out.print(`${elapsed()} run ${out.paint("bold", first.id)}: pipeline ${first.pipeline}, ${first.stages.map((s) => s.name).join(" → ") || "no stages"}`);
    const run = await follow(api, first, {
      deadline: t0 + opts.timeout * 1000,
      signal: abort.signal,
      view: {
        // The final status is the summary's first line below.
        runStatus: (r) => void (isFinalRun(r.status) || out.print(`${elapsed()} ${statusMark(r.status, color)} run ${formatStatus(r.status, color)}`)),
        stageStart: (_i, stage) => out.print(`${elapsed()} ${statusMark("running", color)} ${out.paint("bold", stage.name)} started`),
        lines: (_i, _stage, lines) => out.print(lines.map((l) => gutter + l).join("\n")),
        stageEnd: (_i, stage) => {
          const d = stageDuration(stage, Date.now());
          const took = d === undefined ? "" : ` in ${formatDuration(d)}`;
          out.print(`${elapsed()} ${statusMark(stage.status, color)} ${out.paint("bold", stage.name)} ${formatStatus(stage.status, color)}${took}`);
          if (stage.error) out.print(`${gutter}${out.paint("red", stage.error)}`);
        },
      },
    });

    out.print();
    const d = runDuration(run, Date.now());
    out.print(`run ${run.id} ${formatStatus(run.status, color)}${d === undefined ? "" : ` in ${formatDuration(d)}`} ${out.paint("dim", `(${formatDuration(Date.now() - t0)} from push to done)`)}`);
    if (run.status === "succeeded") {
      const pull = pullReference(run);
      if (run.image) out.print(`  image   ${run.image}`);
      if (run.digest) out.print(`  digest  ${out.paint("bold", run.digest)}`);
      if (pull) {
        out.print(`  pushed  ${pull}`);
        out.print(`pull it:  docker pull ${pull}`);
        out.print(`run it:   docker run --rm -p 8080:8080 ${pull}   # then open http://127.0.0.1:8080/`);
      }
    } else {
      const error = runError(run);
      if (error) out.print(out.paint("red", `error: ${error}`));
      const hint = servicesHintFor(error);
      if (hint) out.print(hint);
      if (remote) out.print(`see the logs with: hoist logs ${run.id}`);
    }
    if (opts.keep) out.print(out.paint("dim", `kept ${dir}`));
    return run.status === "succeeded" ? 0 : 1;
  } catch (err) {
    if (!abort.signal.aborted) throw err;
    if (runId && remote) out.warn(`run ${runId} goes on on the server: \`hoist run ${runId} --watch\``);
    if (runtime) {
      // The worker may be waiting on a job: remove the jobs, give the stop a moment, and
      // remove again whatever the worker re-created meanwhile.
      const rt = runtime;
      runtime = undefined;
      if (runId) await removeJobs(rt, runId, out.warn);
      await withTimeout(rt.stop(), 3_000).catch(() => undefined);
      if (runId) await removeJobs(rt, runId, out.warn);
    }
    return 130;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await runtime?.stop().catch((err: unknown) => out.warn(`stopping Hoist failed: ${(err as Error).message}`));
    if (!opts.keep) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Job containers outlive the worker that started them (so another worker can re-attach);
 * an interrupted in-process demo has no other worker, so it removes its run's jobs itself.
 */
async function removeJobs(runtime: LocalRuntime, runId: string, warn: (message: string) => void): Promise<void> {
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
/** Waits (by looking every 100 ms) until a worker has read the delivery's `.hoist.yml`. */
async function resolvedDelivery(api: HoistClient, id: string, deadline: number): Promise<Delivery> {
  for (;;) {
    const d = await api.getDelivery(id);
    if (d.status !== "pending") return d;
    if (Date.now() > deadline) throw new CliError(`delivery ${id} is still pending: ${d.lastError ?? "no worker has read it yet"}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function servicesHintFor(error: string | undefined): string | undefined {
  if (!error) return undefined;
  if (/docker\.sock|ECONNREFUSED|ENOENT|connect|no such image|not found: hoist\/|registry|manifest unknown/i.test(error)) return SERVICES_HINT;
  return undefined;
}
