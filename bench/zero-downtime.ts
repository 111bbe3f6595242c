// bench/zero-downtime: what a release costs the traffic going through it. Two replicas of a
// tiny app (busybox httpd + CGI answering "v1" or "v2") on the local Docker engine behind a
// fresh HAProxy 2.6, 200 requests/s flowing through HAProxy (test/support/load.ts, in its
// own thread) while v1 is replaced by v2 with each strategy (blue-green; rolling start-first,
// one at a time; canary 10-50-100 every 2 s). The baseline, measured in the same script, is
// the naive way: one container on a fixed published host port behind the same HAProxy, and
// "stop the old container, start the new one" on that port.
//
// The last row releases the web service of a three-service app (web, a db keeping a counter in a
// named volume, a worker; test/support/releases.ts) while the db and the worker run on untouched.
//
// Each strategy runs on a single Docker host (containers) and on Swarm (a service per release;
// rolling through Swarm's own update), unless --mode picks one.
//
// Per row: requests sent and failed (whole run), p99 latency of requests started in the 3 s
// of steady traffic before the release and of those started during it, the release's wall
// time, and the cutover: from the release start until the last request answered by v1, and
// until the first answered by v2 (by request start time; see the header it prints). With
// several rounds, the verdict compares p99s of the latencies pooled over all rounds: one
// release lasts about a second (some 200 requests, so its own p99 is its second-slowest
// request), too few for a percentile to mean much alone.
//
// The load generator, HAProxy and Hoist stand for clients, a router and a control plane that
// run on other machines; here they share 2 cores with the engine, whose container starts and
// stops would otherwise show up as the bench's own processes waiting for a CPU. So the bench
// raises its priority (nice -10, inherited by HAProxy and the load thread) when it may;
// --same-priority measures without that.
//
// --trace prints, per release, its slowest requests among its own log lines.
//
//   npx tsx bench/zero-downtime.ts [--rounds 1] [--mode docker|swarm|both] [--strategy all|blue-green|rolling|canary] [--same-priority] [--trace]
import { setPriority } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type Dockerode from "dockerode";
import { DockerInstances } from "../lib/engine/docker-instances.ts";
import type { InstanceHost } from "../lib/engine/instances.ts";
import { SwarmInstances } from "../lib/engine/swarm-instances.ts";
import { startServers, type StartedServers } from "../lib/local/servers.mjs";
import { waitHealthy } from "../lib/release/health.ts";
import { httpProbe } from "../lib/release/http-probe.ts";
import type { ReleaseContext } from "../lib/release/ports.ts";
import { release, type ReleaseDeps } from "../lib/release/release.ts";
import { systemReleaseClock } from "../lib/release/targets.ts";
import { HaproxyRouter } from "../lib/router/haproxy.ts";
import { loopbackDynamoApi } from "../lib/store/dynamo-loopback.ts";
import { DynamoReleaseStore } from "../lib/store/dynamo-releases.ts";
import { ensureTable } from "../lib/store/dynamo-table.ts";
import { buildApp } from "../test/support/apps.ts";
import { requireDocker, uniqueSuffix } from "../test/support/docker.ts";
import { freePort, startHaproxy, type Haproxy } from "../test/support/haproxy.ts";
import { percentile, startLoad, type Load, type LoadReport } from "../test/support/load.ts";
// The e2e's release description (canary steps default to 10, 50, 100).
import { compose, removeReleased, requireSwarmManager, threeServiceApp } from "../test/support/releases.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "1" },
    mode: { type: "string", default: "both" },
    strategy: { type: "string", default: "all" },
    "same-priority": { type: "boolean", default: false },
    trace: { type: "boolean", default: false },
  },
});
// First, before any thread or child exists: Linux keeps a nice value per thread, and new ones inherit it.
let priority = "same as the engine (--same-priority)";
if (!values["same-priority"]) {
  try {
    setPriority(-10);
    priority = "nice -10 for the bench, HAProxy and the load thread";
  } catch (err) {
    priority = `same as the engine: raising it failed (${(err as Error).message}; run as root for nice -10)`;
  }
}
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error(`bench/zero-downtime: --rounds must be a whole number >= 1, got "${values.rounds}"`);
  process.exit(2);
}
type Mode = "docker" | "swarm";
const MODES: Record<string, Mode[]> = { docker: ["docker"], swarm: ["swarm"], both: ["docker", "swarm"] };
const picked = MODES[values.mode ?? "both"];
if (!picked) {
  console.error(`bench/zero-downtime: --mode must be docker, swarm or both, got "${values.mode}"`);
  process.exit(2);
}
const modes: Mode[] = picked;

const RATE = 200;
const STEADY_MS = 3_000;
const TAIL_MS = 2_000;
/** How often the cutover clock marks the load: the resolution of the cutover columns. */
const TICK_MS = 10;
const BASE_IMAGE = "hoist/busybox:latest";
const suffix = uniqueSuffix();
const tag = (version: string) => `hoist-bench-zd-${suffix}:${version}`;

type Strategy = "blue-green" | "rolling" | "canary";
/** `app`: the web service of a three-service app (test/support/releases.ts), released while its db and worker run on. */
const STRATEGIES: { row: string; strategy: Strategy; app?: true }[] = [
  { row: "blue-green", strategy: "blue-green" },
  { row: "rolling (start-first, 1)", strategy: "rolling" },
  { row: "canary (10,50,100 / 2s)", strategy: "canary" },
  { row: "app: web blue-green", strategy: "blue-green", app: true },
];
const NAIVE = "naive stop+start (1 ctr)";
const chosen = STRATEGIES.filter((s) => values.strategy === "all" || s.strategy === values.strategy || (s.app && values.strategy === "app"));
if (chosen.length === 0) {
  console.error(`bench/zero-downtime: --strategy must be all, app, ${[...new Set(STRATEGIES.map((s) => s.strategy))].join(", ")}, got "${values.strategy}"`);
  process.exit(2);
}

interface Figures {
  sent: number;
  failed: number;
  steadyP99: number;
  releaseP99: number;
  ratio: number;
  releaseMs: number;
  /** From the release start to the last request answered by v1 (NaN: none after the start). */
  lastV1Ms: number;
  /** From the release start to the first request answered by v2 (NaN: none). */
  firstV2Ms: number;
  failures: string[];
  /** The slowest requests of the release window: ms after the release start, latency in ms. */
  slowest: { at: number; latency: number }[];
  /** Date.now() at the release start, to place the release's own log lines next to them. */
  releaseStart: number;
  /** Latencies (ms) of the steady window and of the release window, for pooled percentiles. */
  steady: number[];
  during: number[];
}

// ---- cleanup: everything started is registered here and undone in reverse, even on failure.

const cleanups: { what: string; fn: () => Promise<unknown> }[] = [];
function onCleanup(what: string, fn: () => Promise<unknown>): () => Promise<void> {
  const entry = { what, fn };
  cleanups.push(entry);
  // Undo one now (and forget it), for resources that live for one row only.
  return async () => {
    const at = cleanups.indexOf(entry);
    if (at >= 0) cleanups.splice(at, 1);
    await fn().catch((err: unknown) => console.error(`cleanup (${what}): ${(err as Error).message}`));
  };
}
let cleaning: Promise<void> | undefined;
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const { what, fn } = cleanups.pop()!;
      await fn().catch((err: unknown) => console.error(`cleanup (${what}): ${(err as Error).message}`));
    }
  })();
  return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => {
    console.error(`\nbench/zero-downtime: ${signal}, cleaning up`);
    // A step in flight may have started a container after the sweep: sweep once more.
    void cleanupAll()
      .then(() => sweep?.())
      .finally(() => process.exit(130));
  });

/** Removes every container this run made (their names carry the run's suffix); set once Docker answers. */
let sweep: (() => Promise<void>) | undefined;

/** Removes every container carrying `label` (key=value), running or not. */
async function removeLabelled(docker: Dockerode, label: string): Promise<void> {
  const found = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(found.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

// ---- load, with a mark every TICK_MS from the release start so the cutover can be located.

interface Ticks {
  /** Labels and times (Date.now(), the load's clock) of the marks, the first being "release". */
  list: { label: string; at: number }[];
  stop(): void;
}

function tick(load: Load): Ticks {
  const list = [{ label: "release", at: Date.now() }];
  load.mark("release");
  let i = 0;
  const timer = setInterval(() => {
    const label = `tick-${++i}`;
    list.push({ label, at: Date.now() });
    load.mark(label);
  }, TICK_MS);
  return { list, stop: () => clearInterval(timer) };
}

/**
 * LoadReport gives no per-request times, only body counts of requests started after a mark;
 * with a mark every TICK_MS that is enough to bracket the last v1 and the first v2 request.
 * `bodies(mark)` shrinks as the mark moves later, so a binary search finds the last mark
 * with the property; the request is in [that mark, the next one): report the next one's time.
 */
function locate(report: LoadReport, ticks: Ticks["list"], holds: (bodies: Map<string, number>) => boolean, end: number): { ms: number; resolution: number } {
  const start = ticks[0]!.at;
  if (!holds(report.bodies(ticks[0]!.label))) return { ms: Number.NaN, resolution: 0 };
  let lo = 0;
  let hi = ticks.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (holds(report.bodies(ticks[mid]!.label))) lo = mid;
    else hi = mid - 1;
  }
  const upper = ticks[lo + 1]?.at ?? end;
  return { ms: upper - start, resolution: upper - ticks[lo]!.at };
}

let worstResolution = 0;
function figures(report: LoadReport, ticks: Ticks["list"], stoppedAt: number, releaseMs: number): Figures {
  const v1 = locate(report, ticks, (b) => b.has("v1"), stoppedAt);
  const v2Total = report.bodies("release").get("v2") ?? 0;
  const v2 = locate(report, ticks, (b) => v2Total > 0 && b.get("v2") === v2Total, stoppedAt);
  worstResolution = Math.max(worstResolution, v1.resolution, v2.resolution);
  const steadyP99 = report.p99(undefined, "release");
  const releaseP99 = report.p99("release", "after");
  return {
    sent: report.sent,
    failed: report.failed,
    steadyP99,
    releaseP99,
    ratio: releaseP99 / steadyP99,
    releaseMs,
    lastV1Ms: v1.ms,
    firstV2Ms: v2.ms,
    failures: report.failures,
    slowest: report.slowest(8, "release", "after"),
    releaseStart: ticks[0]!.at,
    steady: report.latencies(undefined, "release"),
    during: report.latencies("release", "after"),
  };
}

/** Load at RATE on `url`: STEADY_MS of steady traffic, the release, TAIL_MS more, then the figures. */
async function underLoad(url: string, work: () => Promise<void>): Promise<Figures> {
  const load = await startLoad(url, RATE);
  let stopped = false;
  const stopLoad = onCleanup("load generator", async () => {
    if (!stopped) await load.stop();
  });
  await sleep(STEADY_MS);
  const ticks = tick(load);
  let releaseMs: number;
  try {
    const t0 = performance.now();
    await work();
    releaseMs = performance.now() - t0;
    load.mark("after");
    await sleep(TAIL_MS);
  } finally {
    ticks.stop();
  }
  const stoppedAt = Date.now();
  stopped = true;
  const report = await load.stop();
  await stopLoad();
  return figures(report, ticks.list, stoppedAt, releaseMs);
}

// ---- the rows


async function withHaproxy<T>(fn: (haproxy: Haproxy) => Promise<T>): Promise<T> {
  const haproxy = await startHaproxy();
  const stop = onCleanup(`haproxy ${haproxy.url}`, () => haproxy.stop());
  try {
    return await fn(haproxy);
  } finally {
    await stop();
  }
}

async function strategyRow(docker: Dockerode, deps: ReleaseDeps, mode: Mode, strategy: Strategy, round: number, app = false): Promise<Figures> {
  const env = `zd-${mode[0]}-${app ? "app" : strategy}-${suffix}-r${round}`;
  const host: InstanceHost = mode === "swarm" ? new SwarmInstances(docker) : new DockerInstances(docker);
  // Services, containers, and an app's network and volume: the row's own (its env is unique).
  const removeContainers = onCleanup(`instances of ${env}`, () => removeReleased(docker, env));
  try {
    return await withHaproxy(async (haproxy) => {
      const log: string[] = [];
      const timed: { at: number; line: string }[] = [];
      const ctx: ReleaseContext = {
        env,
        backend: haproxy.backend,
        host,
        router: new HaproxyRouter({ socket: haproxy.socket }),
        log: (line) => {
          log.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
          timed.push({ at: Date.now(), line });
        },
        probe: httpProbe,
        clock: systemReleaseClock,
      };
      const specOf = async (version: string) => (app ? threeServiceApp({ web: tag(version), other: tag("v1") }) : compose(strategy));
      const trigger = { type: "manual" as const, by: "bench" };
      const failed = (what: string, error?: string) => new Error(`${strategy} on ${mode}: ${what} failed: ${error ?? "?"}\n  ${log.join("\n  ")}`);
      const first = await release(deps, ctx, { image: tag("v1"), spec: await specOf("v1"), trigger });
      if (first.status !== "succeeded") throw failed("release of v1", first.error);
      timed.length = 0;
      const spec = await specOf("v2");
      const f = await underLoad(`${haproxy.url}/cgi-bin/app`, async () => {
        const second = await release(deps, ctx, { image: tag("v2"), spec, trigger });
        if (second.status !== "succeeded") throw failed("release of v2", second.error);
      });
      if (values.trace) {
        // Where the slow requests fall among the release's own steps (ms after the release start).
        const events = [
          ...f.slowest.map((r) => ({ at: r.at, text: `    request took ${r.latency.toFixed(1)} ms` })),
          ...timed.map((t) => ({ at: t.at - f.releaseStart, text: `  ${t.line}` })),
        ].sort((a, b) => a.at - b.at);
        console.log(`  trace of ${strategy} on ${mode}:`);
        for (const e of events) console.log(`  ${String(Math.round(e.at)).padStart(6)} ms${e.text}`);
      }
      return f;
    });
  } finally {
    await removeContainers();
  }
}

async function naiveRow(docker: Dockerode, round: number): Promise<Figures> {
  const label = `hoist.bench.zd=${suffix}-r${round}`;
  const removeContainers = onCleanup(`naive containers of round ${round}`, () => removeLabelled(docker, label));
  const port = await freePort();
  const run = async (version: string) => {
    // docker run -d --name ... -p 127.0.0.1:PORT:8080 IMAGE
    const container = await docker.createContainer({
      name: `hoist-bench-zd-${suffix}-r${round}-naive-${version}`,
      Image: tag(version),
      Labels: { "hoist.bench.zd": `${suffix}-r${round}` },
      ExposedPorts: { "8080/tcp": {} },
      HostConfig: { PortBindings: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: String(port) }] } },
    });
    await container.start();
    return container;
  };
  try {
    return await withHaproxy(async (haproxy) => {
      let current = await run("v1");
      const unhealthy = await waitHealthy({ probe: httpProbe, clock: systemReleaseClock }, { address: "127.0.0.1", port }, { path: "/healthz", status: 200, timeoutMs: 2_000, intervalMs: 100, retries: 50 });
      if (unhealthy) throw new Error(`naive: v1 on 127.0.0.1:${port} is not healthy: ${unhealthy}`);
      const router = new HaproxyRouter({ socket: haproxy.socket });
      await router.addServer(haproxy.backend, { name: "naive", address: "127.0.0.1", port, weight: 100 });
      await router.setState(haproxy.backend, "naive", "ready");
      return underLoad(`${haproxy.url}/cgi-bin/app`, async () => {
        // "Stop the old container, start the new one" on the same port; nothing waits for
        // the new one to answer, nothing tells HAProxy.
        await current.remove({ force: true });
        current = await run("v2");
      });
    });
  } finally {
    await removeContainers();
  }
}

// ---- main

const median = (xs: number[]) => {
  const sorted = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor(sorted.length / 2)]!;
};
const num = (x: number, digits: number) => (Number.isNaN(x) ? "-" : x.toFixed(digits));
const secs = (ms: number) => num(ms / 1000, 2);

type Row = Omit<Figures, "failures" | "steady" | "during" | "slowest" | "releaseStart">;
function line(name: string, f: Row): string {
  return [
    name.padEnd(32),
    String(Math.round(f.sent)).padStart(6),
    String(Math.round(f.failed)).padStart(7),
    num(f.steadyP99, 1).padStart(10),
    num(f.releaseP99, 1).padStart(11),
    `${num(f.ratio, 2)}x`.padStart(7),
    secs(f.releaseMs).padStart(10),
    secs(f.lastV1Ms).padStart(9),
    secs(f.firstV2Ms).padStart(9),
  ].join(" ");
}
const HEADER = `${"row".padEnd(32)} ${"sent".padStart(6)} ${"failed".padStart(7)} ${"steady p99".padStart(10)} ${"release p99".padStart(11)} ${"ratio".padStart(7)} ${"release s".padStart(10)} ${"last v1 s".padStart(9)} ${"first v2 s".padStart(9)}`;

async function main(): Promise<void> {
  // Preflight: say what to start before building anything.
  const docker = await requireDocker();
  try {
    await docker.getImage(BASE_IMAGE).inspect();
  } catch {
    throw new Error(`the base image ${BASE_IMAGE} is missing from the engine: run \`bash scripts/services.sh\` (it imports the local base images)`);
  }
  await (await startHaproxy()).stop(); // fails with how to install haproxy

  console.log(
    `bench/zero-downtime: v1 -> v2, replicas 2, ${RATE} requests/s through HAProxy to /cgi-bin/app, ${STEADY_MS / 1000}s steady before the release, ${TAIL_MS / 1000}s after; ${rounds} round(s)${rounds > 1 ? ", medians per column" : ""}`,
  );
  console.log(`  p99 in ms of requests started in the window: steady = load start .. release start, release = release start .. release end; ratio = release / steady${rounds > 1 ? " (summary: p99s of each window's latencies pooled over the rounds)" : ""}`);
  console.log(`  last v1 / first v2: seconds from the release start to the START of the last request answered "v1" / the first answered "v2"`);
  console.log(`  (LoadReport has no per-request times: located by marking the load every ${TICK_MS} ms and reading bodies() after each mark)`);
  console.log(`  priority: ${priority}`);
  console.log(`  naive: one container on 127.0.0.1:<port> as HAProxy's only server; its "release" = force-remove v1, create + start v2 on that port\n`);

  // Undone in reverse: rows (load, containers, HAProxy), servers, container sweep, images.
  onCleanup("app images", async () => {
    for (const version of ["v1", "v2"]) await docker.getImage(tag(version)).remove().catch(() => undefined);
  });
  sweep = async () => {
    const left = await docker.listContainers({ all: true });
    await Promise.all(left.filter((c) => c.Names.some((n) => n.includes(suffix))).map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  };
  onCleanup("leftover containers", () => sweep!());
  const servers: StartedServers = await startServers({});
  onCleanup("dynalite and SQS servers", () => servers.close());
  const api = loopbackDynamoApi(servers.dynamodb);
  const table = `zd-${suffix}`;
  await ensureTable(api, table);
  const deps: ReleaseDeps = { store: new DynamoReleaseStore(api, table), now: () => Date.now(), leaseMs: 10 * 60_000 };
  for (const version of ["v1", "v2"]) await buildApp(docker, tag(version), { version });

  if (modes.includes("swarm")) await requireSwarmManager(docker);
  const rows = modes.flatMap((mode) => chosen.map((s) => ({ ...s, mode, row: `${s.row} ${mode}` })));
  const results = new Map<string, Figures[]>([...rows.map((r) => [r.row, []] as [string, Figures[]]), [NAIVE, []]]);
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}`);
    console.log(`  ${HEADER}`);
    for (const { row, mode, strategy, app } of rows) {
      const f = await strategyRow(docker, deps, mode, strategy, round, app === true);
      results.get(row)!.push(f);
      console.log(`  ${line(row, f)}`);
    }
    const f = await naiveRow(docker, round);
    results.get(NAIVE)!.push(f);
    console.log(`  ${line(NAIVE, f)}`);
    for (const [row, runs] of results) {
      const failures = runs.at(-1)!.failures;
      if (failures.length > 0) console.log(`  ${row} failures (up to 20): ${failures.join(", ")}`);
    }
  }

  const summary = new Map(
    [...results].map(([row, runs]): [string, Row] => {
      const m = (pick: (f: Figures) => number) => median(runs.map(pick));
      const steadyP99 = percentile(runs.flatMap((f) => f.steady), 0.99);
      const releaseP99 = percentile(runs.flatMap((f) => f.during), 0.99);
      return [
        row,
        {
          sent: m((f) => f.sent),
          failed: m((f) => f.failed),
          steadyP99,
          releaseP99,
          ratio: releaseP99 / steadyP99,
          releaseMs: m((f) => f.releaseMs),
          lastV1Ms: m((f) => f.lastV1Ms),
          firstV2Ms: m((f) => f.firstV2Ms),
        },
      ];
    }),
  );
  console.log(
    `\n${rounds > 1 ? `${rounds} rounds: medians, p99s of the pooled latencies` : "result"} (cutover resolution: ${worstResolution} ms or better)`,
  );
  console.log(HEADER);
  for (const [row, f] of summary) console.log(line(row, f));

  const naive = summary.get(NAIVE)!;
  const strategies = rows.map(({ row }) => ({ strategy: row, f: summary.get(row)!, all: results.get(row)! }));
  const clean = strategies.filter((s) => s.all.every((f) => f.failed === 0)).map((s) => s.strategy);
  const dirty = strategies.filter((s) => !s.all.every((f) => f.failed === 0)).map((s) => `${s.strategy} ${s.f.failed}`);
  const p99 = strategies.map((s) => `${s.strategy} ${s.f.ratio <= 2 ? "yes" : "NO"} (${num(s.f.ratio, 2)}x)`);
  console.log(
    `\nverdict: zero failures in every round: ${clean.join(", ") || "none"}${dirty.length ? `; failed (median): ${dirty.join(", ")}` : ""}; naive: ${naive.failed} failed of ${naive.sent} (median); release p99 <= 2x steady p99: ${p99.join(", ")}`,
  );
}

try {
  await main();
} catch (err) {
  console.error(`bench/zero-downtime: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
