import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubPush } from "../../lib/demo/payloads.ts";
import { commitAll, createSampleApp } from "../../lib/demo/sample-app.ts";
import type { LocalRuntime } from "../../lib/local/runtime.ts";
import type { ReleaseRecord } from "../../lib/release/records.ts";
import { requireDocker, uniqueSuffix } from "../support/docker.ts";
import { removeReleased } from "../support/releases.ts";
import { startHaproxy } from "../support/haproxy.ts";
import { API_TOKEN, api, finalRun, hoistCli, logsOf, sendGitHubPush, startRuntime } from "../support/local.ts";
import { waitFor } from "../support/wait.ts";

// A push builds, tests and pushes the image, then releases that very image (by the pushed
// digest) to staging and to production, each behind its own HAProxy, through the pipeline.
const suffix = uniqueSuffix();
let rt: LocalRuntime;
const proxies: Awaited<ReturnType<typeof startHaproxy>>[] = [];
let app: { path: string; sha: string };

const compose = `services:
  web:
    image: placeholder
    ports: ["8080"]
    deploy: { replicas: 2 }
    x-hoist:
      strategy: blue-green
      health: { path: /, interval: 200ms, retries: 20 }
      drain: 500ms
`;

function hoistYml(image: string, branches = "[main]", target = "production"): string {
  return `pipelines:
  main:
    on: { push: { branches: ${branches} } }
    stages:
      - build: { image: ${image} }
      - test: { run: "grep -q hello /www/index.html" }
      - push:
      - deploy: { environment: staging }
      - deploy: { environment: ${target} }
`;
}

async function page(url: string): Promise<string> {
  return (await fetch(url)).text();
}

beforeAll(async () => {
  await requireDocker();
  proxies.push(await startHaproxy(), await startHaproxy());
  const [staging, production] = proxies as [(typeof proxies)[0], (typeof proxies)[0]];
  const dir = await mkdtemp(join(tmpdir(), "hoist-envs-"));
  const file = join(dir, "environments.yml");
  await writeFile(
    file,
    `environments:
  - name: staging-${suffix}
    engine: { endpoint: "unix:///var/run/docker.sock" }
    router: { admin: "unix://${staging.socket}", backend: ${staging.backend} }
  - name: production-${suffix}
    engine: { endpoint: "unix:///var/run/docker.sock" }
    router: { admin: "unix://${production.socket}", backend: ${production.backend} }
    protection: { branches: [main], approval: { required: false } }
`,
  );
  rt = await startRuntime({ HOIST_ENVIRONMENTS_FILE: file });
  app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-app-")), {
    image: `e2e-deploy-${suffix}`,
    hoistYml: hoistYml(`e2e-deploy-${suffix}`).replaceAll("environment: staging", `environment: staging-${suffix}`).replace("environment: production", `environment: production-${suffix}`),
  });
  await writeFile(join(app.path, "docker-compose.yml"), compose);
  app = await commitAll(app.path, "main", "compose file");
}, 120_000);

afterAll(async () => {
  await rt?.stop();
  for (const p of proxies) await p.stop();
  await removeReleased(await requireDocker(), suffix);
});

async function push(sha: string, ref = "refs/heads/main") {
  const [id] = await sendGitHubPush(rt.url, githubPush({ path: app.path, sha, ref, fullName: "acme/deploy" }));
  return finalRun(rt.url, id!, 180_000);
}

describe("deploy stages: staging then production, one image", () => {
  it("releases the pushed image to staging and production with the same digest, recorded in each history", async () => {
    const run = await push(app.sha);
    expect(run.status, run.error).toBe("succeeded");
    expect(run.stages.map((s) => [s.name, s.status])).toEqual([
      ["build", "succeeded"],
      ["test", "succeeded"],
      ["push", "succeeded"],
      ["deploy", "succeeded"],
      ["deploy-2", "succeeded"],
    ]);
    const [, , pushed, staging, production] = run.stages;
    // Released by the pushed digest, not the tag: the same bytes wherever the tag points later.
    const byDigest = `${pushed?.output?.image?.replace(/:[^:/]+$/, "")}@${run.digest}`;
    expect(staging?.output?.image).toBe(byDigest);
    expect(production?.output?.image).toBe(byDigest);
    expect(staging?.output?.digest).toBe(run.digest);
    expect(production?.output?.digest).toBe(run.digest);
    for (const p of proxies) expect(await page(`${p.url}/`)).toContain("hello from hoist");
    const history = await api<{ releases: ReleaseRecord[] }>(rt.url, `/api/environments/production-${suffix}/releases`);
    expect(history.releases.map((r) => [r.image, r.status, r.trigger.runId, r.digest])).toEqual([[byDigest, "succeeded", run.id, run.digest]]);
  });

  it("a second push replaces it; the CLI and the API roll production back to the first", async () => {
    await writeFile(join(app.path, "www", "index.html"), "<h1>hello again from hoist</h1>\n");
    const second = await commitAll(app.path, "main", "v2");
    const run = await push(second.sha);
    expect(run.status, run.error).toBe("succeeded");
    const production = proxies[1]!;
    expect(await page(`${production.url}/`)).toContain("hello again");

    const cli = await hoistCli(rt.url, ["rollback", `production-${suffix}`]);
    expect(cli.code, cli.out).toBe(0);
    expect(await page(`${production.url}/`)).not.toContain("again");

    const res = await fetch(`${rt.url}/api/environments/production-${suffix}/rollback`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(await releaseOf(rt.url, `production-${suffix}`, res)).toMatchObject({ status: "succeeded", trigger: { type: "rollback", by: "the API" } });
    expect(await page(`${production.url}/`)).toContain("hello again");
    const history = (await api<{ releases: ReleaseRecord[] }>(rt.url, `/api/environments/production-${suffix}/releases`)).releases;
    expect(history.map((r) => [r.trigger.type, r.status])).toEqual([
      ["rollback", "succeeded"],
      ["rollback", "succeeded"],
      ["run", "succeeded"],
      ["run", "succeeded"],
    ]);
  });

  it("production refuses a branch its protection rules do not allow, whatever .hoist.yml says", async () => {
    await writeFile(join(app.path, ".hoist.yml"), hoistYml(`e2e-deploy-${suffix}`, '["feature/*"]').replaceAll("environment: staging", `environment: staging-${suffix}`).replace("environment: production", `environment: production-${suffix}`));
    const feature = await commitAll(app.path, "main", "deploy a feature branch");
    const run = await push(feature.sha, "refs/heads/feature/x");
    expect(run.status).toBe("failed");
    expect(run.error).toMatch(new RegExp(`environment production-${suffix} accepts releases only from main; this run is on feature/x`));
    expect(await page(`${proxies[1]!.url}/`)).toContain("hello again"); // production untouched
  });

  it("an unknown environment fails the stage with what to do", async () => {
    await writeFile(join(app.path, ".hoist.yml"), hoistYml(`e2e-deploy-${suffix}`, "[main]", "nowhere").replaceAll("environment: staging", `environment: staging-${suffix}`));
    const bad = await commitAll(app.path, "main", "deploy to an unknown environment");
    const run = await push(bad.sha);
    expect(run.status).toBe("failed");
    expect(run.error).toMatch(/unknown environment "nowhere" \(registered: .*production-.*\): register it with `hoist env set`/);
  });

  it("a compose file without the named service, and an engine that does not answer, fail the stage; production keeps serving", async () => {
    const put = await fetch(`${rt.url}/api/environments/offline-${suffix}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ engine: { endpoint: "tcp://127.0.0.1:1" }, router: { admin: `unix://${proxies[1]!.socket}`, backend: proxies[1]!.backend } }),
    });
    expect(put.status, await put.clone().text()).toBe(200);
    const deployTo = (stage: string) =>
      `pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages:\n      - build: { image: e2e-deploy-${suffix} }\n      - push:\n      - ${stage}\n`;

    await writeFile(join(app.path, ".hoist.yml"), deployTo(`deploy: { environment: production-${suffix}, service: api }`));
    const noService = await push((await commitAll(app.path, "main", "wrong service")).sha);
    expect(noService.status).toBe("failed");
    expect(noService.error).toMatch(/docker-compose.yml: no service "api" \(services: web\)/);

    await writeFile(join(app.path, ".hoist.yml"), deployTo(`deploy: { environment: offline-${suffix} }`));
    const offline = await push((await commitAll(app.path, "main", "offline engine")).sha);
    expect(offline.status).toBe("failed");
    expect(offline.error).toMatch(new RegExp(`cannot release to offline-${suffix}: the Docker engine is unreachable .*check the environment's engine endpoint`));
    expect(await page(`${proxies[1]!.url}/`)).toContain("hello again");
  });

  it("the environments API validates what it stores and says what is missing", async () => {
    const call = (path: string, init: RequestInit = {}) =>
      fetch(`${rt.url}${path}`, { ...init, headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" } });
    const bad = await call("/api/environments/Bad_Name", { method: "PUT", body: JSON.stringify({ engine: { endpoint: "http://x" } }) });
    expect(bad.status).toBe(400);
    const { error } = (await bad.json()) as { error: string };
    expect(error).toMatch(/name: is lower-case letters/);
    expect(error).toMatch(/engine.endpoint: is unix:\/\/\/path\/docker.sock/);
    expect(error).toMatch(/router: /);
    expect((await call("/api/environments/nowhere")).status).toBe(404);
    expect((await call("/api/environments/nowhere/rollback", { method: "POST", body: "{}" })).status).toBe(404);
    const none = await call(`/api/environments/staging-${suffix}/rollback`, { method: "POST", body: JSON.stringify({ to: "no-such-release" }) });
    expect(none.status).toBe(404);
    expect(((await none.json()) as { error: string }).error).toMatch(/has no release no-such-release/);
    const list = (await (await call("/api/environments")).json()) as { environments: { name: string }[] };
    expect(list.environments.map((e) => e.name)).toEqual(expect.arrayContaining([`staging-${suffix}`, `production-${suffix}`]));
  });
});

describe("a canary deploy stage between its steps", () => {
  it("hands the run to a delayed wake-up instead of keeping a worker waiting, the next worker finishes the canary, and a cancel while it waits withdraws it", async () => {
    const haproxy = await startHaproxy();
    proxies.push(haproxy);
    // A one-second step budget: a 2 s canary interval cannot be waited out inside one call.
    const short = await startRuntime({ HOIST_STEP_BUDGET_MS: "1000" });
    try {
      const env = `canary-${suffix}`;
      const put = await fetch(`${short.url}/api/environments/${env}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ engine: { endpoint: "unix:///var/run/docker.sock" }, router: { admin: `unix://${haproxy.socket}`, backend: haproxy.backend } }),
      });
      expect(put.status, await put.clone().text()).toBe(200);
      const image = `e2e-canary-${suffix}`;
      const dir = await mkdtemp(join(tmpdir(), "hoist-canary-"));
      let canaryApp = await createSampleApp(dir, {
        image,
        hoistYml: `pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages:\n      - build: { image: ${image} }\n      - push:\n      - deploy: { environment: ${env} }\n`,
      });
      await writeFile(join(dir, "docker-compose.yml"), compose.replace("strategy: blue-green", "strategy: canary\n      steps: [50, 100]\n      interval: 2s"));
      canaryApp = await commitAll(dir, "main", "canary compose file");
      const pushTo = async (sha: string) => {
        const [id] = await sendGitHubPush(short.url, githubPush({ path: dir, sha, ref: "refs/heads/main", fullName: "acme/canary" }));
        return finalRun(short.url, id!, 180_000);
      };
      const first = await pushTo(canaryApp.sha);
      expect(first.status, first.error).toBe("succeeded");

      await writeFile(join(dir, "www", "index.html"), "<h1>hello canary</h1>\n");
      const second = await pushTo((await commitAll(dir, "main", "v2")).sha);
      expect(second.status, second.error).toBe("succeeded");
      expect(await page(`${haproxy.url}/`)).toContain("hello canary");
      const logs = await (await fetch(`${short.url}/api/runs/${second.id}/logs?stage=2&format=text`, { headers: { authorization: `Bearer ${API_TOKEN}` } })).text();
      // Parked at 50% with its checkpoint, woken by the delayed message, carried on from there.
      expect(logs).toMatch(/canary at 50%: next look at \d{4}-\d\d-\d\dT/);
      expect(logs).toMatch(/carrying on \(canary at 50%\)/);
      expect(logs).toMatch(/release .* succeeded/);
      const history = await api<{ releases: ReleaseRecord[] }>(short.url, `/api/environments/${env}/releases`);
      expect(history.releases.map((r) => [r.status, r.strategy, r.checkpoint])).toEqual([
        ["succeeded", "canary", undefined],
        ["succeeded", "canary", undefined],
      ]);

      // A third push parks at 50% for a minute, and its run is cancelled meanwhile: no worker
      // holds it, the cancel's wake-up brings one, which withdraws the canary and frees the
      // environment, instead of leaving v3 serving half the traffic until the lease expires.
      await writeFile(join(dir, "docker-compose.yml"), compose.replace("strategy: blue-green", "strategy: canary\n      steps: [50, 100]\n      interval: 60s"));
      await writeFile(join(dir, "www", "index.html"), "<h1>hello v3</h1>\n");
      const [thirdId] = await sendGitHubPush(short.url, githubPush({ path: dir, sha: (await commitAll(dir, "main", "v3")).sha, ref: "refs/heads/main", fullName: "acme/canary" }));
      const releases = () => api<{ releases: ReleaseRecord[] }>(short.url, `/api/environments/${env}/releases`).then((h) => h.releases);
      await waitFor("the v3 canary to park at 50%", async () => (await releases())[0]?.checkpoint?.canary?.step === 50, 120_000);
      const pages = await Promise.all(Array.from({ length: 20 }, () => page(`${haproxy.url}/`)));
      expect(pages.some((p) => p.includes("hello v3"))).toBe(true); // the canary takes traffic
      const cancel = await fetch(`${short.url}/api/runs/${thirdId}/cancel`, { method: "POST", headers: { authorization: `Bearer ${API_TOKEN}` } });
      expect(cancel.status, await cancel.clone().text()).toBe(202);
      const withdrawn = await waitFor("the cancelled release to be withdrawn", async () => {
        const [latest] = await releases();
        return latest?.status === "cancelled" ? latest : undefined;
      });
      expect(withdrawn).toMatchObject({ rolledBack: true, error: expect.stringMatching(/cancelled by the API \(canary at 50%\): canary withdrawn at 50%/) });
      expect(withdrawn.checkpoint).toBeUndefined();
      const after = await Promise.all(Array.from({ length: 20 }, () => page(`${haproxy.url}/`)));
      expect(after.every((p) => p.includes("hello canary"))).toBe(true);
      const third = await finalRun(short.url, thirdId!);
      expect(third.stages.map((st) => st.status)).toEqual(["succeeded", "succeeded", "cancelled"]);
      expect(await logsOf(short.url, thirdId!)).toMatch(/cancelled by the API: release .* cancelled/);
      // The environment is free at once: a rollback goes through now, not when the lease would have expired.
      const rollback = await fetch(`${short.url}/api/environments/${env}/rollback`, { method: "POST", headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" }, body: "{}" });
      expect(await releaseOf(short.url, env, rollback)).toMatchObject({ status: "succeeded" });
    } finally {
      await short.stop();
    }
  });
});

/**
 * A rollback through the API answers 202 with the queued release at once; a worker runs it.
 * Waits (looking at the history, as a user would) until it has ended, and gives it.
 */
async function releaseOf(url: string, env: string, res: Response): Promise<ReleaseRecord> {
  const body = (await res.json()) as { release: ReleaseRecord };
  expect(res.status, JSON.stringify(body)).toBe(202);
  expect(body.release.status).toBe("queued");
  return waitFor(`release ${body.release.id} to end`, async () => {
    const r = (await api<{ releases: ReleaseRecord[] }>(url, `/api/environments/${env}/releases`)).releases.find((x) => x.id === body.release.id);
    return r && r.status !== "queued" && r.status !== "running" ? r : undefined;
  }, 120_000, 200);
}
