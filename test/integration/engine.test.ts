import { rm } from "node:fs/promises";
import type Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerEngine, EngineError } from "../../lib/engine/docker.ts";
import type { JobSpec } from "../../lib/engine/port.ts";
import { makeContext, REGISTRY_URL, removeContainers, requireDocker, requireRegistry, tarDir, uniqueSuffix } from "../support/docker.ts";

// Against the real engine and registry started by scripts/services.sh.
const suffix = uniqueSuffix();
const prefix = `hoist-test-${suffix}`;
const labels = { "hoist.test": suffix };
const registryHost = new URL(REGISTRY_URL).host;

let docker: Dockerode;
let engine: DockerEngine;
const images: string[] = [];
const manifests: string[] = []; // registry URLs of pushed manifests
const dirs: string[] = [];

beforeAll(async () => {
  docker = await requireDocker();
  await requireRegistry();
  engine = new DockerEngine({ docker });
});

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  // Our registry config enables deletes; elsewhere a 405 just leaves the test repo behind.
  await Promise.all(manifests.map((url) => fetch(url, { method: "DELETE" }).catch(() => undefined)));
  if (!docker) return;
  await removeContainers(docker, `hoist.test=${suffix}`);
  // By reference, without force: untags what we tagged and never deletes a shared base image.
  for (const ref of images.reverse()) await docker.getImage(ref).remove().catch(() => undefined);
});

function sleeper(name: string, cmd = ["sleep", "30"]): JobSpec {
  return { name: `${prefix}-${name}`, image: "hoist/busybox:latest", cmd, labels };
}

describe("DockerEngine jobs", () => {
  it("builds an image in a builder job from files uploaded before it starts", async () => {
    const tag = `${prefix}-app:v1`;
    images.push(tag);
    const dir = await makeContext({
      Dockerfile: "FROM hoist/busybox:latest\nCOPY www /www\nRUN echo step-output-from-run && cat /www/index.html\n",
      "www/index.html": "hello from hoist\n",
    });
    dirs.push(dir);
    const spec: JobSpec = {
      name: `${prefix}-build`,
      image: "hoist/builder:latest",
      cmd: ["docker", "build", "-t", tag, "/ctx"],
      labels,
      mountEngineSocket: true,
      files: async () => tarDir(dir),
      filesAt: "/ctx",
    };

    const started = await engine.ensureJob(spec);
    const done = await engine.waitJob(spec.name, 90_000);

    expect(["running", "exited"]).toContain(started.state);
    expect(done).toMatchObject({ state: "exited", exitCode: 0 });
    if (done.state !== "exited") return;
    expect(done.finishedAt).toBeGreaterThanOrEqual(done.startedAt);
    expect(done.startedAt).toBeGreaterThan(Date.now() - 600_000);
    expect(await engine.imageExists(tag)).toBe(true);
    const logs = await engine.jobLogs(spec.name);
    expect(logs).toContain("step-output-from-run");
    expect(logs).toContain("hello from hoist");
    expect(logs).toContain(`Successfully tagged ${tag}`);
    // An exited job is reported, never run again.
    expect(await engine.ensureJob(spec)).toEqual(done);
  });

  it("starts a job once however many callers ensure it, even at the same time", async () => {
    const spec = sleeper("once", ["sh", "-c", "echo run-marker; exec sleep 30"]);

    const [a, b] = await Promise.all([engine.ensureJob(spec), engine.ensureJob(spec)]);
    const c = await engine.ensureJob(spec);

    const named = await docker.listContainers({ all: true, filters: { label: [`hoist.test=${suffix}`] } });
    expect(named.filter((x) => x.Names.includes(`/${spec.name}`))).toHaveLength(1);
    expect(c.state).toBe("running");
    for (const state of [a, b]) expect(["created", "running"]).toContain(state.state);
    expect(await engine.inspectJob(spec.name)).toEqual(c);
    await expect.poll(() => engine.jobLogs(spec.name)).toContain("run-marker");
    expect((await engine.jobLogs(spec.name)).match(/run-marker/g)).toHaveLength(1);
    await engine.removeJob(spec.name);
  });

  it("reports a killed and removed job as missing", async () => {
    const spec = sleeper("killed");
    expect((await engine.ensureJob(spec)).state).toBe("running");

    await engine.removeJob(spec.name);

    expect(await engine.inspectJob(spec.name)).toEqual({ state: "missing" });
    expect(await engine.waitJob(spec.name, 1_000)).toEqual({ state: "missing" });
    await expect(engine.removeJob(spec.name)).resolves.toBeUndefined();
  });

  it("reports the exit code and both output streams of a failing job run under an entrypoint", async () => {
    const spec = { ...sleeper("fails", ["echo to-stdout; echo to-stderr >&2; exit 3"]), entrypoint: ["sh", "-c"] };

    await engine.ensureJob(spec);
    const done = await engine.waitJob(spec.name, 30_000);
    const logs = await engine.jobLogs(spec.name);

    expect(done).toMatchObject({ state: "exited", exitCode: 3 });
    expect(logs).toContain("to-stdout\n");
    expect(logs).toContain("to-stderr\n");
    expect(logs).not.toMatch(/[\u0000-\u0002]/); // frame headers were stripped
  });

  it("returns a running job when waitJob times out first", async () => {
    const spec = sleeper("slow");
    await engine.ensureJob(spec);

    const t0 = Date.now();
    const state = await engine.waitJob(spec.name, 500);
    const waited = Date.now() - t0;

    expect(state.state).toBe("running");
    expect(waited).toBeGreaterThanOrEqual(450);
    expect(waited).toBeLessThan(10_000);
    await engine.removeJob(spec.name);
  });
});

describe("DockerEngine push", () => {
  it("pushes to the registry and returns the manifest digest it stored", async () => {
    const source = `${prefix}-push:src`;
    const repo = `${prefix}/app`;
    const target = `${registryHost}/${repo}:v1`;
    await docker.getImage("hoist/busybox:latest").tag({ repo: `${prefix}-push`, tag: "src" });
    images.push(source, target);
    const lines: string[] = [];

    const { digest } = await engine.push(source, target, { onProgress: (line) => lines.push(line) });

    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(lines.join("\n")).toMatch(/Pushed|Layer already exists|Mounted from/);
    const manifest = `${REGISTRY_URL}/v2/${repo}/manifests/${digest}`;
    manifests.push(manifest);
    const res = await fetch(manifest, {
      headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-content-digest")).toBe(digest);
    const byDigest = `${registryHost}/${repo}@${digest}`;
    images.push(byDigest);
    const pull = await docker.pull(byDigest);
    await new Promise((resolve, reject) => {
      docker.modem.followProgress(pull, (err) => (err ? reject(err) : resolve(undefined)));
    });
    expect(await engine.imageExists(byDigest)).toBe(true);
    // Pushing the same image again is idempotent.
    expect(await engine.push(source, target)).toEqual({ digest });
  });

  it("fails a push of an unknown image without retry", async () => {
    const err = await engine.push(`${prefix}-nope:v1`, `${registryHost}/${prefix}/nope:v1`).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ retryable: false, statusCode: 404 });
    expect((err as Error).message).toMatch(/No such image.*build the image first/);
  });

  it("fails a push to an unreachable registry as retryable, with the daemon's reason", async () => {
    const target = `127.0.0.1:1/${prefix}/app:v1`;
    await docker.getImage("hoist/busybox:latest").tag({ repo: `127.0.0.1:1/${prefix}/app`, tag: "v1" });
    images.push(target);

    const err = await engine.push(target, target).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ retryable: true });
    expect((err as Error).message).toMatch(/pushing .* failed: .*connection refused/);
  });
});

describe("DockerEngine errors", () => {
  it.each([
    ["socketPath", { socketPath: `/tmp/${prefix}-absent.sock` }],
    ["access", { access: { endpoint: `unix:///tmp/${prefix}-absent.sock` } }],
  ])("reports an unreachable engine (%s) as retryable, saying what to check", async (_, opts) => {
    const absent = new DockerEngine(opts);

    const err = await absent.inspectJob("anything").catch((e: unknown) => e);

    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ retryable: true });
    expect((err as Error).message).toContain(`cannot reach the Docker engine at /tmp/${prefix}-absent.sock`);
    expect((err as Error).message).toContain("is dockerd running?");
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it("fails a job whose image does not exist without retry", async () => {
    const err = await engine.ensureJob({ ...sleeper("noimage"), image: `${prefix}-absent:v1` }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ retryable: false, statusCode: 404 });
    expect((err as Error).message).toContain(`${prefix}-absent:v1`);
    expect(await engine.inspectJob(`${prefix}-noimage`)).toEqual({ state: "missing" });
  });

  it("fails a job whose files go to a directory missing from the image, and leaves it unstarted", async () => {
    const dir = await makeContext({ "a.txt": "a" });
    dirs.push(dir);
    const spec: JobSpec = { ...sleeper("nodir"), files: async () => tarDir(dir), filesAt: "/no/such/dir" };

    const err = await engine.ensureJob(spec).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ retryable: false });
    expect((err as Error).message).toContain("the directory /no/such/dir must exist in image hoist/busybox:latest");
    expect(await engine.inspectJob(spec.name)).toEqual({ state: "created" });
  });
});
