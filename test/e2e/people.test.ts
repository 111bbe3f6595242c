import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubPush } from "../../lib/demo/payloads.ts";
import { commitAll, createSampleApp } from "../../lib/demo/sample-app.ts";
import type { LocalRuntime } from "../../lib/local/runtime.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import type { ReleaseRecord } from "../../lib/release/records.ts";
import { requireDocker, uniqueSuffix } from "../support/docker.ts";
import { startHaproxy } from "../support/haproxy.ts";
import { API_TOKEN, api, finalRun, hoistCli, sendGitHubPush, startRuntime } from "../support/local.ts";
import { removeReleased } from "../support/releases.ts";
import { waitFor } from "../support/wait.ts";

// People in the loop, on the real engine: an environment whose server-side rule asks for two
// approvals releases nothing until they come (whatever .hoist.yml says); a failed run re-runs
// from its build without rebuilding; a newer push supersedes an older run in flight.
const suffix = uniqueSuffix();
const production = `production-${suffix}`;
const later = `later-${suffix}`;
let rt: LocalRuntime;
let proxy: Awaited<ReturnType<typeof startHaproxy>>;
let envFile: string;

const compose = `services:
  web:
    image: placeholder
    ports: ["8080"]
    x-hoist:
      health: { path: /, interval: 200ms, retries: 20 }
`;

async function post<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${rt.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}

const runOf = (id: string) => api<Run>(rt.url, `/api/runs/${id}`);
const statusOf = async (id: string, status: Run["status"]) => waitFor(`run ${id} to be ${status}`, async () => ((await runOf(id)).status === status ? runOf(id) : undefined), 180_000, 200);

async function app(name: string, hoistYml: string) {
  const repo = await createSampleApp(await mkdtemp(join(tmpdir(), `hoist-${name}-`)), { image: `e2e-${name}-${suffix}`, hoistYml });
  await writeFile(join(repo.path, "docker-compose.yml"), compose);
  return commitAll(repo.path, "main", "compose file");
}

async function push(path: string, sha: string, fullName: string): Promise<string> {
  const [id] = await sendGitHubPush(rt.url, githubPush({ path, sha, ref: "refs/heads/main", fullName }));
  return id!;
}

beforeAll(async () => {
  await requireDocker();
  proxy = await startHaproxy();
  envFile = join(await mkdtemp(join(tmpdir(), "hoist-envs-")), "environments.yml");
  await writeFile(
    envFile,
    `environments:
  - name: ${production}
    engine: { endpoint: "unix:///var/run/docker.sock" }
    router: { admin: "unix://${proxy.socket}", backend: ${proxy.backend} }
    protection: { approval: { required: true, approvers: [alice, bob, Codertocat], count: 2, selfApproval: false } }
`,
  );
  rt = await startRuntime({ HOIST_ENVIRONMENTS_FILE: envFile });
}, 120_000);

afterAll(async () => {
  await rt?.stop();
  await proxy?.stop();
  await removeReleased(await requireDocker(), suffix);
});

describe("an environment that requires approval", () => {
  it("releases nothing until two approvers other than the pusher approve, whatever .hoist.yml says; then the deploy runs end to end", async () => {
    const repo = await app(
      "gate",
      `pipelines:
  main:
    on: { push: { branches: [main] } }
    stages:
      - build: { image: e2e-gate-${suffix} }
      - push:
      - deploy: { environment: ${production}, approval: { count: 1, self_approval: true } }
`,
    );
    const id = await push(repo.path, repo.sha, "acme/gate");
    const waiting = await statusOf(id, "waiting");
    expect(waiting.stages.map((s) => s.status)).toEqual(["succeeded", "succeeded", "waiting"]);
    // The environment's rule stands over the file's lighter one.
    expect(waiting.stages[2]?.gate?.rule).toMatchObject({ approvers: ["alice", "bob", "Codertocat"], count: 2, selfApproval: false });
    expect((await api<{ releases: ReleaseRecord[] }>(rt.url, `/api/environments/${production}/releases`)).releases).toEqual([]);

    // The pusher (Codertocat, from the push payload) may not approve; someone off the list may not either.
    const self = await hoistCli(rt.url, ["approve", id, "--as", "Codertocat"]);
    expect(self.code).not.toBe(0);
    expect(self.out).toContain("refuses self-approval");
    expect((await post<{ error: string }>(`/api/runs/${id}/approve`, { by: "mallory" })).body.error).toContain("mallory is not an approver here");

    const first = await hoistCli(rt.url, ["approve", id, "--as", "alice"]);
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain("1 so far (alice)");
    expect((await runOf(id)).status).toBe("waiting");
    expect((await post<{ outcome: string }>(`/api/runs/${id}/approve`, { by: "alice" })).body.outcome).toBe("duplicate");
    expect((await post<{ summary: string }>(`/api/runs/${id}/approve`, { by: "bob", reason: "looks good" })).body.summary).toBe("approved by alice, bob");

    const run = await finalRun(rt.url, id, 180_000);
    expect(run.status, run.error).toBe("succeeded");
    expect(run.stages[2]?.gate?.decisions.map((d) => [d.by, d.via, d.approve, d.refused !== undefined])).toEqual([
      ["Codertocat", "cli", true, true],
      ["mallory", "api", true, true],
      ["alice", "cli", true, false],
      ["bob", "api", true, false],
    ]);
    expect(await (await fetch(`${proxy.url}/`)).text()).toContain("hello from hoist");
    const shown = await hoistCli(rt.url, ["run", id]);
    expect(shown.out).toContain("approved by alice, bob");
  });

  it("a rejection fails the run with who and why, and releases nothing", async () => {
    const repo = await app("reject", `pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages:\n      - build: { image: e2e-reject-${suffix} }\n      - push:\n      - deploy: { environment: ${production} }\n`);
    const id = await push(repo.path, repo.sha, "acme/reject");
    await statusOf(id, "waiting");
    const before = (await api<{ releases: ReleaseRecord[] }>(rt.url, `/api/environments/${production}/releases`)).releases.length;
    const cli = await hoistCli(rt.url, ["approve", id, "--reject", "--reason", "freeze week", "--as", "bob"]);
    expect(cli.code, cli.out).toBe(0);
    const run = await finalRun(rt.url, id);
    expect(run.status).toBe("failed");
    expect(run.error).toBe("deploy: rejected by bob: freeze week");
    expect((await api<{ releases: ReleaseRecord[] }>(rt.url, `/api/environments/${production}/releases`)).releases.length).toBe(before);
  });
});

describe("rerun and supersede", () => {
  it("re-runs a failed run from its build: the image is not rebuilt (same id), the attempt is kept, and the deploy now succeeds", async () => {
    const repo = await app("rerun", `pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages:\n      - build: { image: e2e-rerun-${suffix} }\n      - push:\n      - deploy: { environment: ${later} }\n`);
    const id = await push(repo.path, repo.sha, "acme/rerun");
    const failed = await finalRun(rt.url, id, 180_000);
    expect(failed.status).toBe("failed");
    expect(failed.error).toContain(`unknown environment "${later}"`);
    const docker = await requireDocker();
    const imageId = (await docker.getImage(failed.image!).inspect()).Id;

    // The operator registers the environment the run needed, then re-runs it from the build.
    const put = await fetch(`${rt.url}/api/environments/${later}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: later, engine: { endpoint: "unix:///var/run/docker.sock" }, router: { admin: `unix://${proxy.socket}`, backend: proxy.backend } }),
    });
    expect(put.status, await put.text()).toBeLessThan(300);
    const cli = await hoistCli(rt.url, ["rerun", id, "--from", "build", "--as", "carol"]);
    expect(cli.code, cli.out).toBe(0);
    const run = await finalRun(rt.url, id, 180_000);
    expect(run.status, run.error).toBe("succeeded");
    expect(run.stages[0]?.output).toMatchObject({ cached: true });
    expect((await docker.getImage(run.image!).inspect()).Id).toBe(imageId);
    expect(run.attempts).toMatchObject([{ by: "carol", from: 0, status: "failed", stages: [{ name: "build", status: "succeeded" }, { name: "push", status: "succeeded" }, { name: "deploy", status: "failed" }] }]);
    const shown = await hoistCli(rt.url, ["run", id]);
    expect(shown.out).toMatch(/attempt 1 .*failed/);
  });

  it("starts a pipeline by hand at a branch, with parameters its test reads, only when the pipeline allows it", async () => {
    const repo = await app(
      "manual",
      `pipelines:\n  main:\n    on: { push: { branches: [main] }, manual: true }\n    stages:\n      - build: { image: e2e-manual-${suffix} }\n      - test: { run: 'test "$GREETING" = hello' }\n  pushed:\n    on: { push: { branches: [nothing] } }\n    stages: [ { build: { image: e2e-manual-${suffix} } } ]\n`,
    );
    // Hoist starts runs by hand only for repositories it has had pushes from.
    const unknown = await hoistCli(rt.url, ["trigger", "main", "--repo", "github:acme/manual", "--ref", "main"]);
    expect(unknown.out).toContain("no run of github:acme/manual yet");
    expect((await finalRun(rt.url, await push(repo.path, repo.sha, "acme/manual"), 180_000)).status).toBe("failed");

    const cli = await hoistCli(rt.url, ["trigger", "main", "--repo", "github:acme/manual", "--ref", "main", "--param", "GREETING=hello", "--as", "erin"]);
    expect(cli.code, cli.out).toBe(0);
    const id = /^run\s+(r\w+)/m.exec(cli.out)?.[1];
    const run = await finalRun(rt.url, id!, 180_000);
    expect(run.status, run.error).toBe("succeeded");
    expect(run).toMatchObject({ sha: repo.sha, branch: "main", trigger: { type: "manual", actor: "erin", params: { GREETING: "hello" } } });
    expect(run.stages[0]?.output).toMatchObject({ cached: true });

    const refused = await post<{ error: string }>(`/api/pipelines/${encodeURIComponent("github:acme/manual")}/pushed/runs`, { by: "erin", ref: "main" });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toContain("add `manual: true`");
    const noRef = await post<{ error: string }>(`/api/pipelines/${encodeURIComponent("github:acme/manual")}/main/runs`, { by: "erin", ref: "no-such-branch" });
    expect(noRef.status).toBe(404);
  });

  it("a newer push cancels the older run of a pipeline with cancel_in_progress, undoing its test in flight", async () => {
    const yml = (test: string) =>
      `pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    concurrency: { cancel_in_progress: true }\n    stages:\n      - build: { image: e2e-super-${suffix} }\n      - test: { run: "${test}" }\n`;
    const first = await app("super", yml("sleep 300"));
    const older = await push(first.path, first.sha, "acme/super");
    const running = await waitFor(`run ${older}'s test to start`, async () => {
      const r = await runOf(older);
      return r.stages[1]?.status === "running" ? r : undefined;
    }, 180_000, 200);
    const job = running.stages[1]?.job;
    await writeFile(join(first.path, ".hoist.yml"), yml("true"));
    const second = await commitAll(first.path, "main", "quick test");
    const newer = await push(second.path, second.sha, "acme/super");
    const cancelled = await finalRun(rt.url, older);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.error).toContain(`cancelled by a newer run (${newer}`);
    const docker = await requireDocker();
    await waitFor(`the older run's test container ${job} to be removed`, async () => ((await docker.listContainers({ all: true, filters: { name: [job!] } })).length === 0 ? true : undefined), 60_000);
    expect((await finalRun(rt.url, newer, 180_000)).status).toBe("succeeded");
  });
});
