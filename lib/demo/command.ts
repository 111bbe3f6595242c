import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
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
import { commitAll, createSampleApp } from "./sample-app.ts";
import type { Run } from "../pipeline/run.ts";
import type { ReleaseRecord } from "../release/records.ts";

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
  /** false with --no-deploy: build, test and push only. */
  deploy: boolean;
  environment: string;
  appUrl: string;
}

export function registerDemo(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .description(
      "push a sample compose app through Hoist and watch it build, test, push and release; then a second version with no failed request, and a rollback (starts Hoist in-process unless --url is given)",
    )
    .option("--registry <host:port>", "registry the in-process Hoist pushes to (env HOIST_REGISTRY)", ctx.cli.HOIST_REGISTRY)
    .option("--image <name>", "image name of the sample app", "hoist-demo")
    .option("--timeout <seconds>", "give up after this long", intArg(1, 86_400), 600)
    .option("--test <command>", "the sample app's test command (e.g. `false`, to see a run fail)")
    .option("--keep", "keep the temporary directory (sample repository and data)")
    .option("--no-deploy", "only build, test and push (no release, no second version, no rollback)")
    .option("--environment <name>", "the environment the sample app is released to (the in-process Hoist registers `local`)", "local")
    .option("--app-url <url>", "where the environment's router answers (the in-process Hoist starts one there)", "http://127.0.0.1:8000")
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
        // A router on the app URL's port and a `local` environment behind it (lib/local/router.ts).
        ...(opts.deploy ? { HOIST_LOCAL_ROUTER_PORT: new URL(opts.appUrl).port || "80", HOIST_LOCAL_ENVIRONMENT: opts.environment } : {}),
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

    let app = await createSampleApp(join(dir, "app"), { image: opts.image, ...(opts.test ? { test: opts.test } : {}), ...(opts.deploy ? { deployTo: opts.environment } : {}) });
    out.print(`${out.paint("dim", "sample app")} ${app.path} ${out.paint("dim", `(branch ${app.branch}, commit ${app.sha.slice(0, 12)})`)}`);
    const t0 = Date.now();
    const elapsed = () => out.paint("dim", formatElapsed(Date.now() - t0));
    const gutter = " ".repeat(visibleWidth(formatElapsed(0)) + 1) + out.paint("dim", "│ ");

    /** A signed push of `sha`, followed to the end of its run. */
    const pushAndFollow = async (sha: string): Promise<Run> => {
      const pushedAt = Date.now();
      const body = githubPush({ path: app.path, sha, ref: `refs/heads/${app.branch}`, fullName: `demo/${opts.image}` });
      const delivery = randomUUID();
      out.print(`→ POST ${url}/hooks/github  X-GitHub-Event: push  X-GitHub-Delivery: ${delivery}  X-Hub-Signature-256: sha256=…`);
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
      out.print(`${elapsed()} run ${out.paint("bold", first.id)}: pipeline ${first.pipeline}, ${first.stages.map((st) => st.name).join(" → ") || "no stages"}`);
      const done = await follow(api, first, {
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
      const d = runDuration(done, Date.now());
      out.print(`run ${done.id} ${formatStatus(done.status, color)}${d === undefined ? "" : ` in ${formatDuration(d)}`} ${out.paint("dim", `(${formatDuration(Date.now() - pushedAt)} from push to done)`)}`);
      return done;
    };

    const run = await pushAndFollow(app.sha);
    if (run.status === "succeeded") {
      const pull = pullReference(run);
      if (run.image) out.print(`  image   ${run.image}`);
      if (run.digest) out.print(`  digest  ${out.paint("bold", run.digest)}`);
      if (pull) {
        out.print(`  pushed  ${pull}`);
        if (!opts.deploy) {
          out.print(`pull it:  docker pull ${pull}`);
          out.print(`run it:   docker run --rm -p 8080:8080 ${pull}   # then open http://127.0.0.1:8080/`);
        }
      }
    } else {
      const error = runError(run);
      if (error) out.print(out.paint("red", `error: ${error}`));
      const hint = servicesHintFor(error);
      if (hint) out.print(hint);
      if (remote) out.print(`see the logs with: hoist logs ${run.id}`);
    }
    if (run.status !== "succeeded" || !opts.deploy) {
      if (opts.keep) out.print(out.paint("dim", `kept ${dir}`));
      return run.status === "succeeded" ? 0 : 1;
    }

    // Released: the app answers through the environment's router.
    const v1 = await answerOf(opts.appUrl);
    out.print(`${statusMark("succeeded", color)} released to ${opts.environment}: ${out.paint("bold", opts.appUrl)} answers ${JSON.stringify(v1)}`);
    out.print();
    out.print(out.paint("bold", "a second version, released while requests keep coming:"));
    await writeFile(join(app.path, "www", "index.html"), "<h1>hello from hoist, v2</h1>\n");
    app = await commitAll(app.path, app.branch, "v2");
    const during = watchTraffic(opts.appUrl);
    const second = await pushAndFollow(app.sha).finally(() => during.stop());
    const traffic = await during.report;
    const v2 = await answerOf(opts.appUrl);
    out.print(`${statusMark(second.status, color)} v2: ${opts.appUrl} answers ${JSON.stringify(v2)}; ${traffic.sent} requests during the run, ${traffic.failed} failed`);
    if (second.status !== "succeeded") return 1;

    out.print();
    out.print(out.paint("bold", `and a rollback (hoist rollback ${opts.environment}):`));
    const back = watchTraffic(opts.appUrl);
    const rolled = await rolledBack(api, opts.environment, t0 + opts.timeout * 1000).finally(() => back.stop());
    const backTraffic = await back.report;
    const v3 = await answerOf(opts.appUrl);
    out.print(
      `${statusMark(rolled.status === "succeeded" ? "succeeded" : "failed", color)} release ${rolled.id} (${rolled.status}): ${opts.appUrl} answers ${JSON.stringify(v3)}; ${backTraffic.sent} requests during it, ${backTraffic.failed} failed`,
    );
    out.print(out.paint("dim", `see them: hoist releases ${opts.environment}`));
    const clean = rolled.status === "succeeded" && traffic.failed === 0 && backTraffic.failed === 0 && v3 === v1 && v2 !== v1;
    if (opts.keep) out.print(out.paint("dim", `kept ${dir}`));
    return clean ? 0 : 1;
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

/** The first line of what `url` answers, or why it did not. */
async function answerOf(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    const text = (await res.text()).trim().split("\n")[0] ?? "";
    return res.ok ? text : `${res.status} ${text}`;
  } catch (err) {
    return `no answer (${(err as Error).message})`;
  }
}

/** Requests to `url`, 20 a second, until stopped: how many were sent and how many failed. */
function watchTraffic(url: string): { stop(): void; report: Promise<{ sent: number; failed: number }> } {
  let stopped = false;
  let sent = 0;
  let failed = 0;
  const inFlight: Promise<void>[] = [];
  const report = (async () => {
    while (!stopped) {
      sent++;
      inFlight.push(
        fetch(url, { signal: AbortSignal.timeout(5_000) }).then(
          async (res) => void (await res.arrayBuffer(), res.ok || failed++),
          () => void failed++,
        ),
      );
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all(inFlight);
    return { sent, failed };
  })();
  return { stop: () => void (stopped = true), report };
}

/** Asks for a rollback of `env` and waits until the release it queued has ended. */
async function rolledBack(api: HoistClient, env: string, deadline: number): Promise<ReleaseRecord> {
  const queued = (await api.rollback(env)).release;
  for (;;) {
    const found = (await api.listReleases(env)).find((r) => r.id === queued.id);
    if (found && found.status !== "queued" && found.status !== "running") return found;
    if (Date.now() > deadline) throw new CliError(`rollback ${queued.id} of ${env} has not ended: see \`hoist releases ${env}\``);
    await new Promise((r) => setTimeout(r, 200));
  }
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
