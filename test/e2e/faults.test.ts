import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type Dockerode from "dockerode";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createSampleApp } from "../../lib/demo/sample-app.ts";
import { startLocal, type LocalRuntime } from "../../lib/local/runtime.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import { jobName } from "../../lib/pipeline/machine.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import { TERMINAL } from "../../lib/pipeline/statuses.ts";
import { acceptPush } from "../../lib/runs/ingest.ts";
import { resolveDelivery } from "../../lib/runs/resolve-delivery.ts";
import type { Services } from "../../lib/services.ts";
import { startAwsServers, servicesOn } from "../support/aws.ts";
import { requireDocker, requireRegistry, uniqueSuffix } from "../support/docker.ts";
import { waitFor } from "../support/wait.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
let docker: Dockerode;
let servers: StartedServers;
let children: ChildProcess[] = [];
let runtimes: LocalRuntime[] = [];

beforeAll(async () => {
  docker = await requireDocker();
  await requireRegistry();
  servers = await startAwsServers();
});
afterEach(async () => {
  for (const c of children) c.kill("SIGKILL");
  await Promise.all(runtimes.map((r) => r.stop()));
  children = [];
  runtimes = [];
});
afterAll(async () => {
  await servers?.close();
});

/** Settings shared by every worker of one test: same table and queue, short leases. */
function sharedEnv(s: Services): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_DYNAMODB: servers.dynamodb,
    AWS_ENDPOINT_URL_SQS: servers.sqs,
    HOIST_TABLE: s.config.HOIST_TABLE,
    HOIST_QUEUE: s.config.HOIST_QUEUE,
    HOIST_ALLOW_LOCAL_REPOS: "1",
    HOIST_REGISTRY: "127.0.0.1:5000",
    HOIST_PORT: "0",
    HOIST_LEASE_MS: "3000",
    HOIST_REDRIVE_AFTER_MS: "2000",
    HOIST_RECONCILE_EVERY_MS: "500",
    HOIST_LOG_LEVEL: "warn",
  };
}

/** What the webhook and then a worker do with a push, every message through `queue`. */
async function push(s: Services, app: { path: string; sha: string }, queue = s.ingest.queue): Promise<string> {
  const result = await acceptPush({ ...s.ingest, queue }, `delivery-${uniqueSuffix()}`, {
    provider: "github",
    repo: { provider: "github", fullName: "acme/faults", cloneUrl: `file://${app.path}` },
    ref: "refs/heads/main",
    branch: "main",
    sha: app.sha,
    deleted: false,
  });
  if (!("delivery" in result)) throw new Error(`push was ignored: ${result.ignored}`);
  await resolveDelivery({ ...s.resolve, queue }, result.delivery.id);
  const run = (await s.deliveries.getDelivery(result.delivery.id))?.delivery.runs?.[0];
  if (!run) throw new Error(`delivery ${result.delivery.id} made no run`);
  return run.id;
}

async function final(s: Services, id: string): Promise<Run> {
  return waitFor(`run ${id} to finish`, async () => {
    const stored = await s.store.getRun(id);
    return stored && TERMINAL.has(stored.run.status) ? stored.run : undefined;
  }, 120_000);
}

/** How many times the engine started the container named `name`. */
function starts(name: string, since: number): Promise<number> {
  return events(since, { container: [name], event: ["start"] });
}

/** How many times the engine tagged `image` (a `docker build -t` tags once per build). */
function builds(image: string, since: number): Promise<number> {
  return events(since, { type: ["image"], image: [image], event: ["tag"] });
}

async function events(since: number, filters: Record<string, string[]>): Promise<number> {
  const stream = await docker.getEvents({ since: Math.floor(since / 1000), until: Math.ceil(Date.now() / 1000), filters });
  const text = await new Promise<string>((resolve, reject) => {
    let out = "";
    stream.on("data", (d: Buffer) => (out += d.toString()));
    stream.on("end", () => resolve(out));
    stream.on("error", reject);
  });
  return text.split("\n").filter(Boolean).length;
}

describe("fault injection", () => {
  it("a worker killed in the middle of a build: the run still succeeds, built once", async () => {
    const t0 = Date.now();
    const s = await servicesOn(servers, { HOIST_ALLOW_LOCAL_REPOS: "1", HOIST_REGISTRY: "127.0.0.1:5000", HOIST_REDRIVE_AFTER_MS: "2000" });
    const image = `fault-kill-${uniqueSuffix()}`;
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-fault-")), {
      image,
      // Unique, so the engine's layer cache cannot answer it and the build really takes a while.
      dockerfileExtra: `RUN echo slow step starts ${uniqueSuffix()} && sleep 4 && echo slow step done`,
    });

    const worker = spawn(process.execPath, ["--import", "tsx", "functions/local.ts"], { cwd: root, env: { ...process.env, ...sharedEnv(s) }, stdio: "ignore" });
    children.push(worker);
    const id = await push(s, app);
    const run = (await s.store.getRun(id))!.run;
    const job = jobName(run, 0);
    await waitFor("the build to be running in its job", async () => {
      const state = await s.engine.inspectJob(job);
      return state.state === "running" && (await s.store.getRun(id))?.run.stages[0]?.status === "running";
    });
    worker.kill("SIGKILL");
    await new Promise((r) => worker.once("exit", r));

    // A fresh worker (with its reconciler) takes over once the dead worker's lease expires.
    runtimes.push(await startLocal(sharedEnv(s)));
    const done = await final(s, id);
    expect(done.status, done.error).toBe("succeeded");
    expect(done.stages[0]?.output).toEqual({ image: `${image}:${app.sha}` }); // built, not "cached"
    expect(await builds(`${image}:${app.sha}`, t0)).toBe(1);
    expect((await s.store.readLogs(id, 0)).map((c) => c.text).join("")).toContain("slow step done");
  });

  it("a wake-up lost from the queue: the reconciler re-drives the run", async () => {
    const s = await servicesOn(servers, { HOIST_ALLOW_LOCAL_REPOS: "1", HOIST_REGISTRY: "127.0.0.1:5000", HOIST_REDRIVE_AFTER_MS: "2000" });
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-fault-")), { image: `fault-lost-${uniqueSuffix()}` });
    let dropped = 0;
    const id = await push(s, app, { send: async () => void dropped++ });
    expect(dropped).toBe(2); // the delivery's wake-up, then its run's
    expect(await s.queue.depth()).toBe(0);
    runtimes.push(await startLocal(sharedEnv(s)));
    const done = await final(s, id);
    expect(done.status, done.error).toBe("succeeded");
  });

  it("the same wake-up delivered many times at once runs each stage once", async () => {
    const t0 = Date.now();
    const s = await servicesOn(servers, { HOIST_ALLOW_LOCAL_REPOS: "1", HOIST_REGISTRY: "127.0.0.1:5000", HOIST_REDRIVE_AFTER_MS: "2000" });
    const image = `fault-dup-${uniqueSuffix()}`;
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-fault-")), { image, dockerfileExtra: "RUN sleep 1" });
    const id = await push(s, app);
    await Promise.all(Array.from({ length: 8 }, () => s.queue.send({ runId: id })));
    runtimes.push(await startLocal({ ...sharedEnv(s), HOIST_WORKER_CONCURRENCY: "8" }), await startLocal(sharedEnv(s)));
    const done = await final(s, id);
    expect(done.status, done.error).toBe("succeeded");
    expect(await builds(`${image}:${app.sha}`, t0)).toBe(1);
    expect(await starts(jobName(done, 1), t0)).toBe(1);
  });
});
