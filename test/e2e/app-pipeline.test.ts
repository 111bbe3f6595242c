import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubPush } from "../../lib/demo/payloads.ts";
import { commitAll, createSampleApp } from "../../lib/demo/sample-app.ts";
import type { LocalRuntime } from "../../lib/local/runtime.ts";
import { createLogger } from "../../lib/log.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import { readContainerFile, requireDocker, uniqueSuffix } from "../support/docker.ts";
import { removeReleased } from "../support/releases.ts";
import { startHaproxy, type Haproxy } from "../support/haproxy.ts";
import { API_TOKEN, finalRun, hoistCli, sendGitHubPush, startRuntime } from "../support/local.ts";

// A push of an app repository whose compose file has two services built from it (a routed web
// and a worker, `build: .`), a secret set on the server, and what a repository must not mount.
const suffix = uniqueSuffix();
const ENV = `apps-${suffix}`;
const IMAGE = `e2e-apps-${suffix}`;
const REGISTRY = "127.0.0.1:5000";
let docker: Dockerode;
let rt: LocalRuntime;
let proxy: Haproxy;
let app: { path: string; sha: string };
const logged: string[] = [];
/** The secret's value: random, so finding it anywhere means it leaked. */
const SECRET = `s3cr3t-${Math.random().toString(36).slice(2)}-${Date.now()}`;

const compose = (extra = "") => `services:
  web:
    build: .
    ports: ["8080"]
    secrets: [db_password]
    depends_on: [worker]
    x-hoist:
      strategy: blue-green
      health: { path: /, interval: 200ms, retries: 20 }
      drain: 500ms
  worker:
    build: .
    command: ["httpd", "-f", "-p", "9000", "-h", "/www"]
    secrets: [{ source: db_password, target: pw, mode: 0400 }]
${extra}secrets:
  db_password: { environment: DB_PASSWORD }
`;

async function call(path: string): Promise<string> {
  return (await fetch(`${rt.url}${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } })).text();
}

async function push(): Promise<Run> {
  const [id] = await sendGitHubPush(rt.url, githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main", fullName: "acme/apps" }));
  return finalRun(rt.url, id!, 180_000);
}

beforeAll(async () => {
  docker = await requireDocker();
  proxy = await startHaproxy();
  const dir = await mkdtemp(join(tmpdir(), "hoist-apps-envs-"));
  const environments = join(dir, "environments.yml");
  await writeFile(
    environments,
    `environments:
  - name: ${ENV}
    engine: { endpoint: "unix:///var/run/docker.sock" }
    router: { admin: "unix://${proxy.socket}", backend: ${proxy.backend} }
`,
  );
  const sink = new Writable({ write: (chunk, _enc, done) => (logged.push(String(chunk)), done()) });
  rt = await startRuntime({ HOIST_ENVIRONMENTS_FILE: environments }, { log: createLogger("debug", [], sink) });
  const set = await hoistCli(rt.url, ["env", "vars", "set", ENV, "DB_PASSWORD", "--secret", "--value-stdin"], `${SECRET}\n`);
  expect(set.code, set.out).toBe(0);
  const hoistYml = `pipelines:
  main:
    on: { push: { branches: [main] } }
    stages:
      - build: { image: ${IMAGE} }
      - deploy: { environment: ${ENV} }
`;
  app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-apps-")), { image: IMAGE, hoistYml });
  await writeFile(join(app.path, "docker-compose.yml"), compose());
  app = await commitAll(app.path, "main", "compose app with a secret");
}, 120_000);

afterAll(async () => {
  await rt?.stop();
  await proxy?.stop();
  if (docker) await removeReleased(docker, ENV);
});

describe("an app repository's compose file, released by its pipeline", () => {
  it("builds once for both services, and each reads the server's secret as a file", async () => {
    const run = await push();
    expect(run.status, run.error).toBe("succeeded");
    expect(await (await fetch(`${proxy.url}/`)).text()).toContain("hello from hoist");
    const [release] = JSON.parse(await call(`/api/environments/${ENV}/releases`)).releases as { instances: string[]; companions: Record<string, string[]> }[];
    const web = release!.instances[0]!;
    const worker = release!.companions.worker![0]!;
    expect((await docker.getContainer(worker).inspect()).Config.Image).toBe((await docker.getContainer(web).inspect()).Config.Image);
    expect((await readContainerFile(docker, web, "/run/secrets/db_password")).trim()).toBe(SECRET);
    expect((await readContainerFile(docker, worker, "/run/secrets/pw")).trim()).toBe(SECRET);
  });

  it("refuses a bind mount of the host's root or of the engine's socket, naming the line; the app keeps serving", async () => {
    for (const [mount, line] of [
      ["/:/host", 14],
      ["/var/run/docker.sock:/var/run/docker.sock", 14],
    ] as const) {
      await writeFile(join(app.path, "docker-compose.yml"), compose().replace('    secrets: [{ source', `    volumes: ["${mount}"]\n    secrets: [{ source`));
      app = await commitAll(app.path, "main", `mount ${mount}`);
      const run = await push();
      expect(run.status).toBe("failed");
      expect(run.error ?? run.stages.at(-1)?.error).toMatch(new RegExp(`docker-compose\\.yml:${line}: services\\.worker\\.volumes: ${mount.split(":")[0]!.replaceAll(".", "\\.")} is a host path, and this environment does not allow host paths`));
      expect(await (await fetch(`${proxy.url}/`)).text()).toContain("hello from hoist");
    }
  });

  it("builds each service's own image from its build: section (its context, Dockerfile target and args), pushes each by digest, and each service runs its own", async () => {
    await mkdir(join(app.path, "worker"), { recursive: true });
    await writeFile(
      join(app.path, "worker", "Dockerfile"),
      ["FROM hoist/busybox:latest AS base", "FROM base AS worker", "ARG KIND", 'RUN mkdir -p /www && echo "$KIND" > /www/kind', "FROM base AS other", "RUN mkdir -p /www && echo other > /www/kind", ""].join("\n"),
    );
    await writeFile(join(app.path, ".env"), "KIND=from-dotenv\n");
    await writeFile(
      join(app.path, "docker-compose.yml"),
      compose()
        .replace(/^ *(secrets:|db_password:).*\n/gm, "")
        .replace("  worker:\n    build: .\n", "  worker:\n    build: { context: ./worker, target: worker, args: [KIND] }\n"),
    );
    await writeFile(
      join(app.path, ".hoist.yml"),
      `pipelines:
  main:
    on: { push: { branches: [main] } }
    stages:
      - build: { image: ${IMAGE}, compose: docker-compose.yml }
      - push: { registry: ${REGISTRY} }
      - deploy: { environment: ${ENV} }
`,
    );
    app = await commitAll(app.path, "main", "a worker built from its own Dockerfile");
    const run = await push();
    expect(run.status, run.error).toBe("succeeded");
    const [build, pushed] = run.stages;
    expect(build!.output?.images).toEqual({ web: `${IMAGE}-web:${app.sha}`, worker: `${IMAGE}-worker:${app.sha}` });
    const byDigest = (service: string) => new RegExp(`^${REGISTRY.replaceAll(".", "\\.")}/${IMAGE}-${service}@sha256:[0-9a-f]{64}$`);
    expect(pushed!.output?.images?.web).toMatch(byDigest("web"));
    expect(pushed!.output?.images?.worker).toMatch(byDigest("worker"));
    expect(await call(`/api/runs/${run.id}/logs?format=text`)).toMatch(/hoist: building worker \(2 of 2\)/);

    expect(await (await fetch(`${proxy.url}/`)).text()).toContain("hello from hoist");
    const [release] = JSON.parse(await call(`/api/environments/${ENV}/releases`)).releases as { instances: string[]; companions: Record<string, string[]> }[];
    const web = await docker.getContainer(release!.instances[0]!).inspect();
    const worker = await docker.getContainer(release!.companions.worker![0]!).inspect();
    expect(web.Config.Image).toBe(pushed!.output?.images?.web);
    expect(worker.Config.Image).toBe(pushed!.output?.images?.worker);
    expect((await readContainerFile(docker, worker.Id, "/www/kind")).trim()).toBe("from-dotenv");
  });

  it("the secret is in no log line, run, release, API answer or container's settings", async () => {
    expect(logged.length).toBeGreaterThan(5);
    const seen: [string, string][] = [["log", logged.join("")]];
    const runs = JSON.parse(await call("/api/runs")) as { runs: Run[] };
    seen.push(["runs", JSON.stringify(runs)]);
    for (const run of runs.runs) seen.push([`logs of ${run.id}`, await call(`/api/runs/${run.id}/logs?format=text`)]);
    seen.push(["releases", await call(`/api/environments/${ENV}/releases`)], ["variables", await call(`/api/environments/${ENV}/variables`)]);
    const list = await hoistCli(rt.url, ["env", "vars", "list", ENV]);
    expect(list.out).toMatch(/DB_PASSWORD/);
    seen.push(["hoist env vars list", list.out]);
    const containers = await docker.listContainers({ all: true, filters: { label: [`hoist.env=${ENV}`] } });
    expect(containers.length).toBeGreaterThanOrEqual(2);
    for (const c of containers) seen.push([`inspect ${c.Names[0]}`, JSON.stringify(await docker.getContainer(c.Id).inspect())]);
    expect(seen.filter(([, text]) => text.includes(SECRET)).map(([where]) => where)).toEqual([]);
  });
});
