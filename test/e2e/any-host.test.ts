import { copyFile, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubPush } from "../../lib/demo/payloads.ts";
import { commitAll, createSampleApp } from "../../lib/demo/sample-app.ts";
import { DockerEngine } from "../../lib/engine/docker.ts";
import type { LocalRuntime } from "../../lib/local/runtime.ts";
import { createLogger } from "../../lib/log.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import { manifestDigest } from "../../lib/registry/client.ts";
import { Environment } from "../../lib/release/environment.ts";
import type { ReleaseRecord } from "../../lib/release/records.ts";
import { release } from "../../lib/release/release.ts";
import { releaseContext } from "../../lib/release/targets.ts";
import { DynamoReleaseStore } from "../../lib/store/dynamo-releases.ts";
import { appServerBinary, buildApp } from "../support/apps.ts";
import { removeContainers, requireDocker, uniqueSuffix } from "../support/docker.ts";
import { startHaproxy, freePort, type Haproxy } from "../support/haproxy.ts";
import { AUTH_REGISTRY, authRegistryCredentials, ENGINE2_SOCKET, requireAuthRegistry, requireEngine2 } from "../support/hosts.ts";
import { API_TOKEN, finalRun, hoistCli, sendGitHubPush, startRuntime } from "../support/local.ts";
import { compose, removeReleased, requireSwarmManager, underLoad } from "../support/releases.ts";
import { waitFor } from "../support/wait.ts";

/**
 * Any host: a push builds on the first engine and pushes to a registry that requires a login;
 * deploy stages release the pushed digest to staging on the first engine and to production on a
 * second engine (its own dockerd, holding no image, standing in for a remote host), which pulls
 * it with the registered login. The registry's password appears nowhere Hoist writes.
 */

const suffix = uniqueSuffix();
const IMAGE = `anyhost-${suffix}`;
const REPO = `${AUTH_REGISTRY}/${IMAGE}`;
let rt: LocalRuntime;
let engine1: Dockerode;
let engine2: Dockerode;
let staging: Haproxy;
let production: Haproxy;
let login: { username: string; password: string };
let app: { path: string; sha: string };
/** Everything the runtime logged, at debug level. */
const logged: string[] = [];

const STAGING = `staging-${suffix}`;
const PRODUCTION = `production-${suffix}`;

const composeFile = `services:
  web:
    image: placeholder
    ports: ["8080"]
    deploy: { replicas: 2 }
    x-hoist:
      strategy: blue-green
      health: { path: /healthz, interval: 200ms, retries: 20 }
      drain: 1s
`;

const hoistYml = `pipelines:
  main:
    on: { push: { branches: [main] } }
    stages:
      - build: { image: ${IMAGE} }
      - test: { run: "test -x /app-server && grep -q v /version" }
      - push:
      - deploy: { environment: ${STAGING} }
      - deploy: { environment: ${PRODUCTION} }
`;

async function call(path: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(`${rt.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json", ...(init.headers ?? {}) },
  });
  return { status: res.status, text: await res.text() };
}

async function registerLogin(password: string): Promise<void> {
  const put = await call(`/api/registries/${AUTH_REGISTRY}`, { method: "PUT", body: JSON.stringify({ username: login.username, password }) });
  expect(put.status, put.text).toBe(200);
  expect(put.text).not.toContain(password);
}

const hoist = (args: string[], stdin?: string) => hoistCli(rt.url, args, stdin);

async function commitVersion(version: string): Promise<string> {
  await writeFile(join(app.path, "version"), `${version}\n`);
  app = await commitAll(app.path, "main", version);
  return app.sha;
}

async function push(sha: string): Promise<Run> {
  const [id] = await sendGitHubPush(rt.url, githubPush({ path: app.path, sha, ref: "refs/heads/main", fullName: "acme/anyhost" }));
  return finalRun(rt.url, id!, 240_000);
}

async function history(env: string): Promise<ReleaseRecord[]> {
  return (JSON.parse((await call(`/api/environments/${env}/releases`)).text) as { releases: ReleaseRecord[] }).releases;
}

const page = async (url: string) => (await fetch(url)).text().then((t) => t.trim());

beforeAll(async () => {
  engine1 = await requireDocker();
  engine2 = await requireEngine2();
  await requireAuthRegistry();
  login = await authRegistryCredentials();
  // The second engine stands in for a host that never built anything: it starts empty.
  await removeContainers(engine2, "hoist.env", () => true);
  for (const image of await engine2.listImages()) await engine2.getImage(image.Id).remove({ force: true });
  expect(await engine2.listImages()).toEqual([]);

  [staging, production] = [await startHaproxy(), await startHaproxy()];
  const dir = await mkdtemp(join(tmpdir(), "hoist-anyhost-"));
  const environments = join(dir, "environments.yml");
  await writeFile(
    environments,
    `environments:
  - name: ${STAGING}
    engine: { endpoint: "unix:///var/run/docker.sock" }
    router: { admin: "unix://${staging.socket}", backend: ${staging.backend} }
  - name: ${PRODUCTION}
    engine: { endpoint: "unix://${ENGINE2_SOCKET}" }
    router: { admin: "unix://${production.socket}", backend: ${production.backend} }
`,
  );
  const sink = new Writable({ write: (chunk, _enc, done) => (logged.push(String(chunk)), done()) });
  rt = await startRuntime({ HOIST_ENVIRONMENTS_FILE: environments, HOIST_REGISTRY: AUTH_REGISTRY }, { log: createLogger("debug", [], sink) });
  // As the README says: the password piped in, never on the command line.
  const set = await hoist(["registry", "set", AUTH_REGISTRY, "--username", login.username, "--password-stdin"], `${login.password}\n`);
  expect(set.code, set.out).toBe(0);
  const list = await hoist(["registry", "list"]);
  expect(list.out).toMatch(new RegExp(`${AUTH_REGISTRY.replaceAll(".", "\\.")} +basic +${login.username}`));
  for (const { out } of [set, list]) expect(out).not.toContain(login.password);

  app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-anyhost-app-")), { image: IMAGE, hoistYml });
  await writeFile(
    join(app.path, "Dockerfile"),
    ["FROM hoist/busybox:latest", "COPY app-server /app-server", "COPY version /version", 'CMD ["/bin/sh", "-c", "exec /app-server 8080 \\"$(cat /version)\\" 1 0"]', ""].join("\n"),
  );
  await copyFile(await appServerBinary(), join(app.path, "app-server"));
  await writeFile(join(app.path, "docker-compose.yml"), composeFile);
  await commitVersion("v1");
}, 180_000);

afterAll(async () => {
  await rt?.stop();
  for (const p of [staging, production]) await p?.stop();
  // What the environments released, their networks too (an engine's address pool is finite).
  await removeReleased(engine1, suffix);
  if (engine2) await removeContainers(engine2, "hoist.env", () => true);
  if (engine2) await removeReleased(engine2, suffix);
});

describe("build on one engine, release by digest on another, with a registry login", () => {
  const digests: string[] = [];

  it("a push builds on engine 1, pushes with the login, and production on engine 2 pulls the pushed digest", async () => {
    const run = await push(app.sha);
    expect(run.status, run.error).toBe("succeeded");
    const [, , pushed, toStaging, toProduction] = run.stages;
    const digest = pushed?.output?.digest ?? "";
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The digest is the registry's own word for the tag, as anyone with the login reads it.
    expect(await manifestDigest(pushed?.output?.image ?? "", login)).toBe(digest);
    for (const stage of [toStaging, toProduction]) expect(stage?.output?.image).toBe(`${REPO}@${digest}`);

    const [prod] = await history(PRODUCTION);
    expect(prod).toMatchObject({ status: "succeeded", image: `${REPO}@${digest}`, digest });
    expect((await history(STAGING))[0]).toMatchObject({ status: "succeeded", digest });
    // What engine 2 runs came from the registry: its image carries the registry digest.
    const held = await engine2.getImage(`${REPO}@${digest}`).inspect();
    expect(held.RepoDigests).toContain(`${REPO}@${digest}`);
    expect(await page(`${production.url}/cgi-bin/app`)).toBe("v1");
    expect(await page(`${staging.url}/cgi-bin/app`)).toBe("v1");
    digests.push(digest);
  }, 300_000);

  it("the next push releases blue-green on engine 2 under 200 requests/s with no failed request", async () => {
    const sha = await commitVersion("v2");
    const { result: run, report } = await underLoad(`${production.url}/cgi-bin/app`, () => push(sha));
    expect(run.status, run.error).toBe("succeeded");
    expect(report.failed, report.failures.join("; ")).toBe(0);
    expect([...report.bodies("after").keys()]).toEqual(["v2"]);
    const digest = run.stages[2]?.output?.digest ?? "";
    expect((await history(PRODUCTION))[0]).toMatchObject({ status: "succeeded", digest, image: `${REPO}@${digest}` });
    digests.push(digest);
  }, 300_000);

  it("a rollback to a release whose image was removed from engine 2 pulls it again and succeeds", async () => {
    const [, first] = await history(PRODUCTION);
    expect(first?.digest).toBe(digests[0]);
    // Gone from the engine: the first release's stopped containers, then its image.
    await removeContainers(engine2, "hoist.release", (labels) => labels["hoist.release"] === first?.id);
    await engine2.getImage(`${REPO}@${digests[0]}`).remove({ force: true });
    await expect(engine2.getImage(`${REPO}@${digests[0]}`).inspect()).rejects.toMatchObject({ statusCode: 404 });

    const asked = await call(`/api/environments/${PRODUCTION}/rollback`, { method: "POST", body: JSON.stringify({ to: first?.id }) });
    expect(asked.status, asked.text).toBe(202);
    const queued = (JSON.parse(asked.text) as { release: ReleaseRecord }).release;
    const done = await waitFor(
      `rollback ${queued.id} to end`,
      async () => {
        const found = (await history(PRODUCTION)).find((r) => r.id === queued.id);
        return found && found.status !== "queued" && found.status !== "running" ? found : undefined;
      },
      180_000,
      500,
    );
    expect(done).toMatchObject({ status: "succeeded", digest: digests[0] });
    expect(await page(`${production.url}/cgi-bin/app`)).toBe("v1");
  }, 240_000);

  describe("what cannot be pulled fails before anything changes, the current release serving", () => {
    let env: Environment;
    let onlyInRegistry: string;
    const store = () => new DynamoReleaseStore(rt.services.releases["api"], rt.services.config.HOIST_TABLE);

    beforeAll(async () => {
      env = Environment.parse({ name: PRODUCTION, engine: { endpoint: `unix://${ENGINE2_SOCKET}` }, router: { admin: `unix://${production.socket}`, backend: production.backend } });
      // An image engine 2 never held, pushed with the login from engine 1.
      const tag = `${REPO}-v3:v3`;
      await buildApp(engine1, `${IMAGE}-v3:v3`, { version: "v3" });
      const { digest } = await new DockerEngine().push(`${IMAGE}-v3:v3`, tag, { auth: { ...login, serveraddress: AUTH_REGISTRY } });
      onlyInRegistry = `${REPO}-v3@${digest}`;
    }, 120_000);

    it.each([
      ["a wrong password", () => ({ ...login, password: `${login.password}-wrong`, serveraddress: AUTH_REGISTRY }), () => onlyInRegistry, /refused the login registered for 127\.0\.0\.1:5001.*hoist registry set 127\.0\.0\.1:5001/],
      ["no login for a registry that needs one", () => undefined, () => onlyInRegistry, /127\.0\.0\.1:5001 needs a login .*register one with `hoist registry set 127\.0\.0\.1:5001/],
      ["a digest the registry does not hold", () => ({ ...login, serveraddress: AUTH_REGISTRY }), () => `${REPO}@sha256:${"0".repeat(64)}`, /does not hold it/],
    ])("%s", async (_what, auth, image, message) => {
      const before = await history(PRODUCTION);
      const spec = await compose("blue-green");
      const err = await release(
        { store: store(), now: () => Date.now(), leaseMs: 60_000 },
        releaseContext(env, () => undefined, async () => auth()),
        { image: image(), spec, trigger: { type: "manual", by: "e2e" } },
      ).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain(login.password);
      expect(await history(PRODUCTION)).toEqual(before);
      expect(await page(`${production.url}/cgi-bin/app`)).toBe("v1");
    }, 60_000);

    it("a registry that does not answer: tried again for a while, then the release fails", async () => {
      const closed = `127.0.0.1:${await freePort()}`;
      const lines: string[] = [];
      const err = await release(
        { store: store(), now: () => Date.now(), leaseMs: 60_000 },
        releaseContext(env, (l) => lines.push(l)),
        { image: `${closed}/app@sha256:${"1".repeat(64)}`, spec: await compose("blue-green"), trigger: { type: "manual", by: "e2e" } },
      ).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/cannot release to .*did not answer/);
      expect(lines.filter((l) => /trying again in/.test(l)).length).toBeGreaterThanOrEqual(2);
      expect(await page(`${production.url}/cgi-bin/app`)).toBe("v1");
    }, 60_000);

    it("a wrong registered password fails the push stage, and production keeps serving", async () => {
      await registerLogin(`${login.password}-wrong`);
      try {
        const run = await push(await commitVersion("v4"));
        expect(run.status).toBe("failed");
        const pushStage = run.stages[2];
        expect(pushStage?.status).toBe("failed");
        expect(pushStage?.error ?? run.error).toMatch(/refused the login registered for 127\.0\.0\.1:5001/);
        expect(await page(`${production.url}/cgi-bin/app`)).toBe("v1");
      } finally {
        await registerLogin(login.password);
      }
    }, 240_000);
  });

  it("on Swarm, the manager pulls with the login and creates the service with it, so its nodes can pull", async () => {
    await requireSwarmManager(engine1);
    const router = await startHaproxy();
    const env = Environment.parse({ name: `swarm-${suffix}`, mode: "swarm", engine: { endpoint: "unix:///var/run/docker.sock" }, router: { admin: `unix://${router.socket}`, backend: router.backend } });
    try {
      // An image only the registry holds: built and pushed from engine 1, then removed from it.
      const local = `${IMAGE}-swarm:v5`;
      await buildApp(engine1, local, { version: "v5" });
      const { digest } = await new DockerEngine().push(local, `${REPO}-swarm:v5`, { auth: { ...login, serveraddress: AUTH_REGISTRY } });
      for (const tag of [local, `${REPO}-swarm:v5`]) await engine1.getImage(tag).remove();
      const image = `${REPO}-swarm@${digest}`;
      await expect(engine1.getImage(image).inspect()).rejects.toMatchObject({ statusCode: 404 });
      const spec = await compose("blue-green");
      const deps = { store: new DynamoReleaseStore(rt.services.releases["api"], rt.services.config.HOIST_TABLE), now: () => Date.now(), leaseMs: 60_000 };

      const refused = await release(deps, releaseContext(env, () => undefined), { image, spec, trigger: { type: "manual", by: "e2e" } }).catch((e: unknown) => e);
      expect((refused as Error).message).toMatch(/needs a login/);

      const done = await release(deps, releaseContext(env, () => undefined, async (host) => (host === AUTH_REGISTRY ? { ...login, serveraddress: host } : undefined)), {
        image,
        spec,
        trigger: { type: "manual", by: "e2e" },
      });
      expect(done).toMatchObject({ status: "succeeded", digest });
      expect(await page(`${router.url}/cgi-bin/app`)).toBe("v5");
      const [service] = await engine1.listServices({ filters: { label: [`hoist.env=${env.name}`] } });
      expect((service?.Spec?.TaskTemplate as { ContainerSpec?: { Image?: string } } | undefined)?.ContainerSpec?.Image).toBe(image);
      // Swarm keeps the login for its nodes, and shows it to no one.
      expect(JSON.stringify(await engine1.getService(service!.ID).inspect())).not.toContain(login.password);
    } finally {
      for (const service of await engine1.listServices({ filters: { label: [`hoist.env=${env.name}`] } })) await engine1.getService(service.ID).remove();
      await router.stop();
    }
  }, 180_000);

  it("the password is in no log line, run, release, API answer or container's inspect", async () => {
    const secret = login.password;
    expect(logged.length).toBeGreaterThan(20);
    const seen: [string, string][] = [["log", logged.join("")]];
    const runs = JSON.parse((await call("/api/runs")).text) as { runs: Run[] };
    expect(runs.runs.length).toBeGreaterThan(0);
    seen.push(["runs", JSON.stringify(runs)]);
    for (const run of runs.runs) seen.push([`logs of ${run.id}`, (await call(`/api/runs/${run.id}/logs?format=text`)).text]);
    for (const env of [STAGING, PRODUCTION]) seen.push([`releases of ${env}`, JSON.stringify(await history(env))]);
    seen.push(["registries", (await call("/api/registries")).text], ["registry", (await call(`/api/registries/${AUTH_REGISTRY}`)).text]);
    for (const engine of [engine1, engine2])
      for (const c of await engine.listContainers({ all: true, filters: { label: ["hoist.env"] } }))
        seen.push([`inspect ${c.Names[0]}`, JSON.stringify(await engine.getContainer(c.Id).inspect())]);
    // The password as such, and as it travels: basic auth, and the engine's X-Registry-Auth.
    const forms = [
      secret,
      Buffer.from(`${login.username}:${secret}`).toString("base64"),
      Buffer.from(JSON.stringify({ username: login.username, password: secret, serveraddress: AUTH_REGISTRY })).toString("base64"),
      Buffer.from(JSON.stringify({ username: login.username, password: secret, serveraddress: AUTH_REGISTRY })).toString("base64url"),
    ];
    expect(seen.filter(([, text]) => forms.some((f) => text.includes(f))).map(([where]) => where)).toEqual([]);
    // The registration itself is there, without the secret.
    expect(JSON.parse(seen.find(([w]) => w === "registry")![1])).toMatchObject({ host: AUTH_REGISTRY, auth: "basic", username: login.username });
  });
});
