// bench/ingest: signed GitHub push webhooks (the real 7.6 KB payload from
// @octokit/webhooks-examples, events/github/push.json) against the local runtime, next to a
// bare hono handler that only verifies the signature, in the same script. Each server runs
// in its own process; the load comes from this one (autocannon).
//
//   npx tsx bench/ingest.ts [--seconds 10] [--rate 1000] [--connections 32]
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { githubPush } from "../lib/demo/payloads.ts";
import { createSampleApp } from "../lib/demo/sample-app.ts";
import { signGitHub } from "../lib/scm/verify.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "10" }, rate: { type: "string", default: "1000" }, connections: { type: "string", default: "32" } },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const connections = Number(values.connections);
const secret = "bench-secret";
const root = fileURLToPath(new URL("../", import.meta.url));

async function startServer(kind: "bare" | "hoist"): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/ingest-servers.ts", kind, secret], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => line.startsWith("READY ") && resolve(line.slice(6)));
    child.once("exit", (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return { url, child };
}

interface Figures {
  label: string;
  sent: number;
  perSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function load(label: string, url: string, body: string, signature: string, opts: { rate?: number }): Promise<Figures> {
  let n = 0;
  const result = await autocannon({
    url: `${url}/hooks/github`,
    method: "POST",
    connections,
    duration: seconds,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    headers: { "content-type": "application/json", "x-github-event": "push", "x-hub-signature-256": signature },
    body,
    // A fresh delivery id per request: every webhook is new work, none is deduplicated away.
    requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, "x-github-delivery": `bench-${process.pid}-${label}-${++n}` } }) }],
  });
  return {
    label,
    sent: result.requests.total,
    perSec: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-bench-app-")), { image: "bench" });
const body = githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main", fullName: "bench/app" });
const signature = await signGitHub(body, secret);
console.log(`payload: ${Buffer.byteLength(body)} bytes, ${seconds}s per phase, ${connections} connections, machine: ${(await import("node:os")).cpus().length} cores`);

const rows: Figures[] = [];
for (const kind of ["bare", "hoist"] as const) {
  const server = await startServer(kind);
  await load(`${kind}-warmup`, server.url, body, signature, { rate: 200 }); // JIT, caches, table and queue warm
  rows.push(await load(`${kind} max`, server.url, body, signature, {}));
  rows.push(await load(`${kind} @${rate}/s`, server.url, body, signature, { rate }));
  server.child.kill("SIGTERM");
  await new Promise((r) => server.child.once("exit", r));
}

console.log("\nphase             sent    req/s    p50 ms   p99 ms   non-2xx  errors");
for (const r of rows)
  console.log(
    `${r.label.padEnd(16)} ${String(r.sent).padStart(6)} ${r.perSec.toFixed(0).padStart(8)} ${r.p50.toFixed(1).padStart(9)} ${r.p99.toFixed(1).padStart(8)} ${String(r.non2xx).padStart(9)} ${String(r.errors).padStart(7)}`,
  );
const bare = rows.find((r) => r.label === "bare max")!;
const hoist = rows.find((r) => r.label === "hoist max")!;
const fixed = rows.find((r) => r.label === `hoist @${rate}/s`)!;
console.log(`\nhoist/bare throughput: ${(hoist.perSec / bare.perSec).toFixed(2)}`);
console.log(`target: >= 1000/s with p99 <= 50 ms: ${hoist.perSec >= 1000 && fixed.p99 <= 50 && fixed.non2xx === 0 ? "met" : "NOT met"} (max ${hoist.perSec.toFixed(0)}/s; p99 at ${rate}/s ${fixed.p99.toFixed(1)} ms)`);
