// bench/ingest: signed GitHub push webhooks (the real 7.6 KB payload from
// @octokit/webhooks-examples, events/github/push.json, each with a new delivery id) against
// the local runtime's HTTP over its embedded table and queue, next to a bare hono handler
// that only verifies the signature, in the same script. Each server runs in its own process;
// the load comes from wrk (C, Debian package) so the generator takes little of the 2 cores.
// Two loads per server: as fast as it answers (16 connections: its throughput), and paced at
// the target's 1,000 webhooks/s (the latency a sender at that rate sees, not queueing).
//
//   npx tsx bench/ingest.ts [--seconds 10] [--connections 16] [--rate 1000]
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { processEnv } from "../lib/config.ts";
import { githubPush } from "../lib/demo/payloads.ts";
import { createSampleApp } from "../lib/demo/sample-app.ts";
import { signGitHub } from "../lib/scm/verify.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "10" }, connections: { type: "string", default: "16" }, rate: { type: "string", default: "1000" } },
});
const secret = "bench-ingest-secret";
const root = fileURLToPath(new URL("../", import.meta.url));

interface Figures {
  requests: number;
  seconds: number;
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function startServer(kind: "bare" | "hoist"): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/ingest-servers.ts", kind, secret], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => line.startsWith("READY ") && resolve(line.slice(6)));
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return { url, child };
}

async function wrk(url: string, seconds: number, connections: number, env: Record<string, string>): Promise<Figures> {
  const threads = Math.min(2, connections);
  env = { ...env, BENCH_THREADS: String(threads) };
  const { stdout } = await promisify(execFile)(
    "wrk",
    [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, "--timeout", "10s", "-s", join(root, "bench/ingest.lua"), `${url}/hooks/github`],
    { env: { ...processEnv(), ...env } },
  ).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") throw new Error("wrk is not installed: apt-get install -y wrk (scripts/install.sh does)");
    throw err;
  });
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
  return JSON.parse(line.slice(7)) as Figures;
}

const seconds = Number(values.seconds);
const connections = Number(values.connections);
const rate = Number(values.rate);
const dir = await mkdtemp(join(tmpdir(), "hoist-bench-"));
const app = await createSampleApp(join(dir, "app"), { image: "bench" });
const body = githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main", fullName: "bench/app" });
await writeFile(join(dir, "body.json"), body);
const env = { BENCH_BODY: join(dir, "body.json"), BENCH_SIGNATURE: await signGitHub(body, secret) };
console.log(`bench/ingest: ${Buffer.byteLength(body)}-byte push, ${seconds}s per load, ${connections} connections, paced at ${rate}/s, ${cpus().length} cores`);

const rows: [string, Figures][] = [];
for (const kind of ["bare", "hoist"] as const) {
  const server = await startServer(kind);
  const run = `${kind}-${process.pid}`;
  await wrk(server.url, 5, connections, { ...env, BENCH_RUN: `${run}-warm` }); // JIT, caches, table
  rows.push([`${kind}`, await wrk(server.url, seconds, connections, { ...env, BENCH_RUN: run })]);
  // Enough connections that the schedule, not the answers, sets the pace.
  rows.push([`${kind} @${rate}/s`, await wrk(server.url, seconds, 64, { ...env, BENCH_RUN: `${run}-paced`, BENCH_RATE: String(rate) })]);
  server.child.kill("SIGTERM");
  await new Promise((r) => server.child.once("exit", r));
}

console.log("\nserver             webhooks   per s   p50 ms   p90 ms   p99 ms   non-2xx  errors");
for (const [kind, f] of rows)
  console.log(
    `${kind.padEnd(17)} ${String(f.requests).padStart(9)} ${(f.requests / f.seconds).toFixed(0).padStart(7)} ${f.p50.toFixed(1).padStart(8)} ${f.p90.toFixed(1).padStart(8)} ${f.p99.toFixed(1).padStart(8)} ${String(f.non2xx).padStart(9)} ${String(f.errors).padStart(7)}`,
  );
const figures = new Map(rows);
const bare = figures.get("bare")!;
const hoist = figures.get("hoist")!;
const paced = figures.get(`hoist @${rate}/s`)!;
const throughput = hoist.requests / hoist.seconds;
console.log(`\nhoist / bare throughput: ${(throughput / (bare.requests / bare.seconds)).toFixed(2)}`);
const met = throughput >= 1000 && hoist.p99 <= 50 && hoist.non2xx + hoist.errors === 0;
console.log(`target (>= 1000 webhooks/s with p99 <= 50 ms, no errors): ${met ? "met" : "not met"}`);
// Closed-loop senders wait for each answer, which hides stalls; a steady sender does not.
console.log(`steady ${rate}/s: p99 ${paced.p99.toFixed(1)} ms, ${paced.non2xx + paced.errors} errors (${((paced.requests / paced.seconds / rate) * 100).toFixed(0)}% of the schedule sent)`);
