import { Writable } from "node:stream";
import { beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.ts";
import { derive } from "../../lib/pipeline/machine.ts";
import type { Run, Stage } from "../../lib/pipeline/run.ts";
import { advanceRun, type AdvanceDeps } from "../../lib/runs/advance.ts";
import { cancelRun } from "../../lib/runs/cancel.ts";
import { decide } from "../../lib/runs/approve.ts";
import { Environment } from "../../lib/release/environment.ts";
import { FakeEngine, FakeRegistry, FakeSource, ManualClock, MemoryQueue, MemoryRunStore, type JobScript } from "../support/memory.ts";

/** Unit tests of the worker's loop over the pure core, with in-memory ports (the real ones: test/integration, test/e2e). */

const stages: Stage[] = [
  { name: "build", status: "pending", spec: { kind: "build", image: "shop", context: ".", dockerfile: "Dockerfile", args: {} } },
  { name: "test", status: "pending", spec: { kind: "test", run: "make test", timeoutSec: 600, env: {} } },
  { name: "push", status: "pending", spec: { kind: "push", target: "127.0.0.1:5000/shop" } },
];

function makeRun(id = "r1"): Run {
  return derive({
    id,
    repo: { provider: "github", fullName: "acme/shop", cloneUrl: "https://github.com/acme/shop.git" },
    ref: "refs/heads/main",
    branch: "main",
    sha: "a".repeat(40),
    pipeline: "main",
    trigger: { type: "push", delivery: "d1" },
    status: "queued",
    stages,
    createdAt: 1,
    updatedAt: 1,
  });
}

let clock: ManualClock;
let store: MemoryRunStore;
let queue: MemoryQueue;
let lines: string[];

function deps(engine: FakeEngine, budgetMs = 60_000): AdvanceDeps {
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  return {
    store,
    queue,
    clock,
    engine,
    source: new FakeSource(),
    log: createLogger("info", [], sink),
    redact: (t) => t,
    workerId: "w-test",
    builderImage: "hoist/builder:latest",
    registry: new FakeRegistry(engine),
    leaseMs: 30_000,
    budgetMs,
    redriveAfterMs: 30_000,
  };
}

const engineWith = (script: (name: string, cmd: string[]) => JobScript = () => ({ exitCode: 0 })) => new FakeEngine(clock, (spec) => script(spec.name, spec.cmd));
const finishedLines = () => lines.filter((l) => l.includes('"msg":"run finished"'));

beforeEach(async () => {
  clock = new ManualClock();
  store = new MemoryRunStore();
  queue = new MemoryQueue();
  lines = [];
  await store.createRun(makeRun(), { until: 0 });
});

describe("a compose build stage", () => {
  const sha = "a".repeat(40);
  const composeStages: Stage[] = [
    { name: "build", status: "pending", spec: { kind: "build", image: "shop", context: ".", dockerfile: "Dockerfile", args: { CI: "1" }, compose: "docker-compose.yml" } },
    { name: "push", status: "pending", spec: { kind: "push", target: "127.0.0.1:5000/shop", registry: "127.0.0.1:5000" } },
  ];
  const COMPOSE = "services:\n  web: { build: ., ports: ['8080'] }\n  worker: { build: { context: ./worker, target: w } }\n  db: { image: postgres }\n";

  async function runWith(files: Record<string, string>, engine = engineWith()) {
    await store.createRun({ ...makeRun("c1"), stages: composeStages }, { until: 0 });
    const source = new FakeSource(files);
    await advanceRun({ ...deps(engine), source }, "c1");
    return { run: (await store.getRun("c1"))!.run, engine, source };
  }

  it("builds each service's image in one job, pushes each, and records them by service", async () => {
    const { run, engine } = await runWith({ "docker-compose.yml": COMPOSE });
    expect(run.status, run.error).toBe("succeeded");
    expect(run.stages[0]!.output?.images).toEqual({ web: `shop-web:${sha}`, worker: `shop-worker:${sha}` });
    expect([...engine.images].sort()).toEqual([`shop-web:${sha}`, `shop-worker:${sha}`]);
    expect([...engine.pushed.keys()].sort()).toEqual([`127.0.0.1:5000/shop-web:${sha}`, `127.0.0.1:5000/shop-worker:${sha}`]);
    expect(run.stages[1]!.output?.images).toEqual({
      web: expect.stringMatching(/^127\.0\.0\.1:5000\/shop-web@sha256:[0-9a-f]{64}$/),
      worker: expect.stringMatching(/^127\.0\.0\.1:5000\/shop-worker@sha256:[0-9a-f]{64}$/),
    });
    expect(run.image).toBe(`shop-web:${sha}`);
  });

  it("reads the compose file to start the build and to finish it, not at each look at it", async () => {
    const engine = engineWith((name) => (name.startsWith("hoist-build-") ? { hold: true } : { exitCode: 0 }));
    const { source } = await runWith({ "docker-compose.yml": COMPOSE }, engine);
    const reads = source.reads;
    for (let i = 0; i < 3; i++) await advanceRun({ ...deps(engine), source }, "c1");
    expect(source.reads).toBe(reads);
    engine.finish(`hoist-build-shop-compose-${sha.slice(0, 12)}`);
    await advanceRun({ ...deps(engine), source }, "c1");
    expect((await store.getRun("c1"))!.run.status).toBe("succeeded");
  });

  it("fails with the file and line when the compose file is missing or refuses a build", async () => {
    const missing = await runWith({});
    expect(missing.run.stages[0]).toMatchObject({ status: "failed", error: expect.stringMatching(/^docker-compose\.yml not found in acme\/shop at a{12}/) });
    store = new MemoryRunStore();
    const refused = await runWith({ "docker-compose.yml": "services:\n  web:\n    build: { context: ., ssh: [default] }\n" });
    expect(refused.run.stages[0]).toMatchObject({ status: "failed", error: "docker-compose.yml:3: services.web.build.ssh is refused: a build gets the repository's files alone: no SSH agent reaches it" });
    expect(refused.engine.starts).toBe(0);
  });
});

describe("advanceRun over the machine's effects", () => {
  it("takes a run through build, test and push, reports it finished once, and removes its finished jobs", async () => {
    const engine = engineWith();
    expect(await advanceRun(deps(engine), "r1")).toBe("finished");
    const { run } = (await store.getRun("r1"))!;
    expect(run).toMatchObject({ status: "succeeded", image: `shop:${"a".repeat(40)}`, digest: expect.stringMatching(/^sha256:/) });
    expect(finishedLines()).toHaveLength(1);
    expect(finishedLines()[0]).toContain('"status":"succeeded"');
    expect(engine.removed.sort()).toEqual([`hoist-build-shop-${"a".repeat(12)}`, "hoist-test-r1-1"]);
    // A duplicate wake-up afterwards finds it final and reports nothing again.
    expect(await advanceRun(deps(engine), "r1")).toBe("already-final");
    expect(finishedLines()).toHaveLength(1);
    expect(queue.sent).toEqual([]);
  });

  it("a failing test fails the run at that stage with the command, keeps its output, and skips the push", async () => {
    const engine = engineWith((name) => (name.startsWith("hoist-test") ? { exitCode: 1, output: "1 failing\n" } : { exitCode: 0 }));
    expect(await advanceRun(deps(engine), "r1")).toBe("finished");
    const { run } = (await store.getRun("r1"))!;
    expect(run.stages.map((s) => s.status)).toEqual(["succeeded", "failed", "skipped"]);
    expect(run.error).toBe("test: `make test` exited with 1");
    expect(await store.logText("r1", 1)).toContain("1 failing");
    expect(finishedLines()[0]).toContain('"status":"failed"');
  });

  it("an engine outage sends the wake-up back (the stage is not failed); once the engine answers, a later wake-up finishes", async () => {
    const engine = engineWith();
    engine.fail = () => Object.assign(new Error("connect ECONNREFUSED /var/run/docker.sock"), { code: "ECONNREFUSED", syscall: "connect" });
    await expect(advanceRun(deps(engine), "r1")).rejects.toThrow(/ECONNREFUSED/);
    const held = (await store.getRun("r1"))!;
    expect(held.run.status).toBe("running");
    expect(held.run.stages[0]!.ok).toBeUndefined();
    engine.fail = undefined;
    clock.advance(31_000); // the failed call's lease runs out
    expect(await advanceRun(deps(engine), "r1")).toBe("finished");
    expect((await store.getRun("r1"))!.run.status).toBe("succeeded");
  });

  it("a permanent engine error (a bad reference) fails the stage with the engine's words", async () => {
    const engine = engineWith((name) => (name.startsWith("hoist-build") ? { throws: () => Object.assign(new Error("(HTTP code 400) invalid reference format"), { statusCode: 400 }) } : {}));
    expect(await advanceRun(deps(engine), "r1")).toBe("finished");
    expect((await store.getRun("r1"))!.run).toMatchObject({ status: "failed", error: "build: (HTTP code 400) invalid reference format" });
  });

  it("leaves a run whose lease another worker holds", async () => {
    const stored = (await store.getRun("r1"))!;
    await store.saveRun(stored.run, stored.version, { until: clock.now() + 10_000, owner: "someone-else" });
    expect(await advanceRun(deps(engineWith()), "r1")).toBe("busy");
    expect((await store.getRun("r1"))!.leaseOwner).toBe("someone-else");
  });

  it("a cancel while the test runs: the worker sees it between two looks, removes the test's job, and the run ends cancelled", async () => {
    const engine = engineWith((name) => (name.startsWith("hoist-test") ? { hold: true } : { exitCode: 0 }));
    engine.onWait = async () => {
      engine.onWait = undefined;
      await cancelRun(store, queue, clock, "r1", "a test");
    };
    expect(await advanceRun(deps(engine), "r1")).toBe("finished");
    const { run } = (await store.getRun("r1"))!;
    expect(run.status).toBe("cancelled");
    expect(run.stages.map((s) => s.status)).toEqual(["succeeded", "cancelled", "skipped"]);
    expect(engine.removed).toContain("hoist-test-r1-1");
    expect(engine.jobs.has("hoist-test-r1-1")).toBe(false);
  });

  it("a stage that outlasts the budget hands the run over: lease released, one wake-up sent", async () => {
    const engine = engineWith((name) => (name.startsWith("hoist-test") ? { hold: true } : { exitCode: 0 }));
    expect(await advanceRun(deps(engine, 10_000), "r1")).toBe("handed-over");
    const held = (await store.getRun("r1"))!;
    expect(held.leaseOwner).toBeUndefined();
    expect(held.run.stages[1]).toMatchObject({ status: "running" });
    expect(queue.sent).toEqual([{ message: { runId: "r1" }, delaySec: 0 }]);
    // The job is re-attached by name, never started twice.
    engine.finish("hoist-test-r1-1");
    expect(await advanceRun(deps(engine), "r1")).toBe("finished");
    expect(engine.starts).toBe(2);
    expect((await store.getRun("r1"))!.run.status).toBe("succeeded");
  });

  it("a save the table can never take fails the run, stripped to what fits, instead of retrying for ever", async () => {
    store = new MemoryRunStore(4000);
    await store.createRun(makeRun(), { until: 0 });
    const huge = "E".repeat(3000);
    const engine = engineWith((name) => (name.startsWith("hoist-build") ? { throws: () => Object.assign(new Error(huge), { statusCode: 400 }) } : {}));
    expect(await advanceRun(deps(engine), "r1")).toBe("finished");
    const { run } = (await store.getRun("r1"))!;
    expect(run.status).toBe("failed");
    expect(run.stopped?.reason).toMatch(/^run record over the item limit: run r1 is \d+ bytes, over the table's 4000/);
    expect(Buffer.byteLength(JSON.stringify(run))).toBeLessThan(4000);
    expect(finishedLines()).toHaveLength(1);
  });

  it("a missing run is reported as such", async () => {
    expect(await advanceRun(deps(engineWith()), "nope")).toBe("missing");
  });
});

describe("an approval gate in the worker's loop", () => {
  const deployStage: Stage = { name: "deploy", status: "pending", spec: { kind: "deploy", environment: "production", compose: "docker-compose.yml", approval: { approvers: ["alice", "bob"], count: 2, timeoutSec: 3600, selfApproval: true } } };
  const releases = (): NonNullable<AdvanceDeps["releases"]> => {
    const env = Environment.parse({ name: "production", engine: { endpoint: "unix:///var/run/docker.sock" }, router: { admin: "unix:///run/haproxy.sock", backend: "web" } });
    const envs = { getEnvironment: async (n: string) => (n === env.name ? env : undefined), listEnvironments: async () => [env], putEnvironment: async () => {} };
    return { store: envs as unknown as NonNullable<AdvanceDeps["releases"]>["store"], source: new FakeSource(), now: () => clock.now(), leaseMs: 60_000, contextFor: () => { throw new Error("no release in this test"); } };
  };

  it("parks the run with a wake-up at the deadline; approvals wake it and the stage runs; the deadline fails it", async () => {
    await store.createRun({ ...makeRun("g1"), stages: [...stages, deployStage] }, { until: 0 });
    const d = { ...deps(engineWith()), releases: releases() };
    expect(await advanceRun(d, "g1")).toBe("handed-over");
    const parked = (await store.getRun("g1"))!;
    expect(parked.run.status).toBe("waiting");
    expect(parked.run.stages[3]?.gate?.rule).toMatchObject({ approvers: ["alice", "bob"], count: 2, expiresAt: clock.now() + 3_600_000 });
    // Nobody holds it; the wake-up comes at SQS's longest delay, and the reconciler leaves it until the deadline.
    expect(parked.leaseOwner).toBeUndefined();
    expect(parked.leaseUntil).toBeGreaterThan(clock.now() + 3_600_000);
    expect(queue.sent.at(-1)).toEqual({ message: { runId: "g1" }, delaySec: 900 });
    // An early wake-up finds it still waiting and parks it again.
    expect(await advanceRun(d, "g1")).toBe("handed-over");
    await decide({ store, queue, clock }, { runId: "g1", approve: true, by: "alice", via: "api" });
    await decide({ store, queue, clock }, { runId: "g1", approve: true, by: "bob", via: "api" });
    expect(await advanceRun(d, "g1")).toBe("finished");
    const released = (await store.getRun("g1"))!.run;
    // The deploy ran (and failed for want of a compose file in this fake repository).
    expect(released.stages[3]).toMatchObject({ status: "failed", error: expect.stringContaining("docker-compose.yml") });

    await store.createRun({ ...makeRun("g2"), stages: [...stages, deployStage] }, { until: 0 });
    expect(await advanceRun(d, "g2")).toBe("handed-over");
    clock.advance(3_600_000);
    expect(await advanceRun(d, "g2")).toBe("finished");
    expect((await store.getRun("g2"))!.run).toMatchObject({ status: "failed", error: "deploy: approval timed out with 0 of 2 approvals" });
  });
});
