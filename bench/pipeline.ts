// bench/pipeline: for a tiny app, the time from a signed push to the image in the registry,
// next to the same work done by raw commands (git clone, docker build, docker run of the
// test, docker push) in the same script. Runs alternate so the machine's drift hits both; the
// load average is printed with the figures (other work on the machine skews both paths).
//
//   npx tsx bench/pipeline.ts [--rounds 5]
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { githubPush } from "../lib/demo/payloads.ts";
import { commitAll, createSampleApp } from "../lib/demo/sample-app.ts";
import { startLocal } from "../lib/local/runtime.ts";
import { createLogger } from "../lib/log.ts";
import { signGitHub } from "../lib/scm/verify.ts";
import { runLog } from "./run-log.ts";

const run = promisify(execFile);
const sh = (cmd: string, args: string[]) => run(cmd, args, { timeout: 120_000 });
const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" } } });
const rounds = Number(values.rounds);
const registry = "127.0.0.1:5000";
const secret = "bench-pipeline-secret";
const test = "grep -q hello /www/index.html";

const log = runLog();
const dir = await mkdtemp(join(tmpdir(), "hoist-bench-pipeline-"));
const runtime = await startLocal(
  { HOIST_PORT: "0", HOIST_DATA_DIR: join(dir, "data"), GITHUB_WEBHOOK_SECRET: secret, HOIST_ALLOW_LOCAL_REPOS: "1", HOIST_REGISTRY: registry },
  { log: createLogger("info", [], log.sink) },
);
const app = await createSampleApp(join(dir, "app"), { image: "bench-pipeline", test });

async function newCommit(i: number) {
  // A change inside the copied directory: both paths must rebuild that layer.
  await writeFile(join(app.path, "www", "round.txt"), `${i} ${Date.now()}\n`);
  return commitAll(app.path, "main", `round ${i}`);
}

async function raw(i: number): Promise<number> {
  const { sha } = await newCommit(i);
  const t0 = performance.now();
  const work = join(dir, `raw-${i}`);
  const image = `${registry}/bench-raw:${sha}`;
  await sh("git", ["clone", "-q", `file://${app.path}`, work]);
  await sh("git", ["-C", work, "checkout", "-q", sha]);
  await sh("docker", ["build", "-q", "-t", image, work]);
  await sh("docker", ["run", "--rm", "--entrypoint", "/bin/sh", image, "-c", test]);
  await sh("docker", ["push", "-q", image]);
  const ms = performance.now() - t0;
  await rm(work, { recursive: true, force: true });
  return ms;
}

async function hoist(i: number): Promise<number> {
  const { sha } = await newCommit(i);
  const body = githubPush({ path: app.path, sha, ref: "refs/heads/main", fullName: "bench/pipeline" });
  const t0 = performance.now();
  const res = await fetch(`${runtime.url}/hooks/github`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": `bench-${sha}`, "x-hub-signature-256": await signGitHub(body, secret) },
  });
  // The webhook records the delivery and answers; a worker reads .hoist.yml and makes the run.
  const { delivery } = (await res.json()) as { delivery: { id: string } };
  const id = await log.until(`delivery ${delivery.id}'s run`, () => log.resolved.get(delivery.id)?.[0], 120_000);
  const run = await log.until(`run ${id}`, () => log.finished.get(id), 120_000);
  if (run.status !== "succeeded") throw new Error(`run ${id} ${run.status}: ${run.error}`);
  return performance.now() - t0;
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
const loadBefore = load();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rawTimes: number[] = [];
const hoistTimes: number[] = [];
await raw(-1); // warm both paths: base image layers, registry, JIT
await hoist(-1);
for (let i = 0; i < rounds; i++) {
  rawTimes.push(await raw(i));
  hoistTimes.push(await hoist(i));
  console.log(`round ${i + 1}: raw ${rawTimes[i]!.toFixed(0)} ms, hoist ${hoistTimes[i]!.toFixed(0)} ms`);
}
await runtime.stop();
const ratio = median(hoistTimes) / median(rawTimes);
console.log(`\npush to image in registry, median of ${rounds}: raw commands ${median(rawTimes).toFixed(0)} ms, hoist ${median(hoistTimes).toFixed(0)} ms`);
console.log(`hoist / raw: ${ratio.toFixed(2)} (target <= 1.15: ${ratio <= 1.15 ? "met" : "not met"})`);
console.log(`load average (1, 5, 15 min): ${loadBefore} before, ${load()} after`);
