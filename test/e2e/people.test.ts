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
import { signGitHub } from "../../lib/scm/verify.ts";
import { API_TOKEN, SECRET, api, finalRun, hoistCli, sendGitHubPush, startRuntime } from "../support/local.ts";
import { blockActions, formBody, slackHeaders } from "../support/chat.ts";
import { removeReleased } from "../support/releases.ts";
import { startRobotServer, type RobotServer } from "../support/robot-server.ts";
import { SLACK_TEST_TOKEN, startSlackServer, type SlackServer } from "../support/slack-server.ts";
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
let slack: SlackServer;
let robot: RobotServer;
const SIGNING_SECRET = "e2e-slack-signing-secret";

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
    protection: { approval: { required: true, approvers: [alice, bob, Codertocat, "slack:U0ALICE"], count: 2, selfApproval: false } }
`,
  );
  slack = await startSlackServer();
  robot = await startRobotServer();
  rt = await startRuntime({
    HOIST_ENVIRONMENTS_FILE: envFile,
    SLACK_BOT_TOKEN: SLACK_TEST_TOKEN,
    SLACK_CHANNEL: "C0CA5",
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slack.apiUrl,
    HOIST_ROBOT_KIND: "dingtalk",
    HOIST_ROBOT_URL: robot.webhook("dingtalk"),
    HOIST_ROBOT_SECRET: "e2e-dingtalk-secret",
    HOIST_LINK_SECRET: "e2e-link-secret-0123456789abcdef0123",
    HOIST_CRON_EVERY_MS: "1000",
  });
}, 120_000);

afterAll(async () => {
  await rt?.stop();
  await proxy?.stop();
  await slack?.close();
  await robot?.close();
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
    expect(waiting.stages[2]?.gate?.rule).toMatchObject({ approvers: ["alice", "bob", "Codertocat", "slack:U0ALICE"], count: 2, selfApproval: false });
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

  it("asks in Slack and the robot's group, and is decided there: a Slack click and a robot link, each refused or counted once", async () => {
    const repo = await app("chat", `pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages:\n      - build: { image: e2e-chat-${suffix} }\n      - push:\n      - deploy: { environment: ${production} }\n`);
    const id = await push(repo.path, repo.sha, "acme/chat");
    await statusOf(id, "waiting");
    const asked = await waitFor("the approval request in Slack", async () => slack.callsTo("chat.postMessage").find((c) => JSON.stringify(c.args).includes(id)), 30_000);
    expect(asked.args.channel).toBe("C0CA5");
    expect(JSON.stringify(asked.args.blocks)).toContain(`${id}|2|approve`);
    const posted = await waitFor("the approval request to the robot", async () => robot.posts.find((p) => JSON.stringify(p.body).includes(id)), 30_000);
    expect(posted.query).toMatchObject({ timestamp: expect.stringMatching(/^\d+$/), sign: expect.any(String) });

    const click = async (userId: string) => {
      const body = formBody({ ...blockActions({ runId: id, stage: 2, userId, responseUrl: slack.responseUrl(`${id}-${userId}`) }), channel: { id: "C0CA5", name: "deploys" }, container: { type: "message", message_ts: "1700000000.000001", channel_id: "C0CA5" } });
      return fetch(`${rt.url}/chat/slack`, { method: "POST", body, headers: await slackHeaders(body, SIGNING_SECRET, Math.floor(Date.now() / 1000)) });
    };
    // amy.mcgee (U0CA5) is not an approver: refused, recorded, and told so privately.
    expect((await click("U0CA5")).status).toBe(200);
    await waitFor("the refusal to be recorded", async () => (await runOf(id)).stages[2]?.gate?.decisions.find((d) => d.by === "slack:U0CA5" && d.refused));
    await waitFor("the clicker to be told why", async () => slack.callsTo("response").find((c) => c.path.includes("U0CA5") && JSON.stringify(c.args).includes("not an approver")));
    expect((await click("U0ALICE")).status).toBe(200);
    await waitFor("alice's approval from Slack", async () => (await runOf(id)).stages[2]?.gate?.decisions.find((d) => d.by === "slack:U0ALICE" && !d.refused));
    await waitFor("the Slack message to be updated", async () => slack.callsTo("chat.update").find((c) => JSON.stringify(c.args).includes("1 so far")));

    // bob's approve link from the robot's message: a GET shows a page and decides nothing; the form's POST decides, once.
    const tokens = [...JSON.stringify(posted.body).matchAll(/chat\/approve\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g)].map((m) => m[1]!);
    const claims = (t: string) => JSON.parse(Buffer.from(t.split(".")[0]!, "base64url").toString()) as { approver: string; decision: string };
    const bobs = tokens.find((t) => claims(t).approver === "bob" && claims(t).decision === "approve");
    expect(bobs).toBeDefined();
    const page = await fetch(`${rt.url}/chat/approve/${bobs}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<form");
    expect((await runOf(id)).status).toBe("waiting");
    expect((await fetch(`${rt.url}/chat/approve/${bobs}`, { method: "POST" })).status).toBe(200);
    expect((await fetch(`${rt.url}/chat/approve/${bobs}`, { method: "POST" })).status).toBe(409);
    const forged = `${bobs!.split(".")[0]}.${"A".repeat(43)}`;
    expect((await fetch(`${rt.url}/chat/approve/${forged}`, { method: "POST" })).status).toBe(403);

    const run = await finalRun(rt.url, id, 180_000);
    expect(run.status, run.error).toBe("succeeded");
    expect(run.stages[2]?.gate?.decisions.filter((d) => !d.refused).map((d) => [d.by, d.via])).toEqual([
      ["slack:U0ALICE", "slack"],
      ["bob", "robot"],
    ]);
    // Released: said once in each channel.
    await waitFor("the release notice in Slack", async () => slack.callsTo("chat.postMessage").filter((c) => JSON.stringify(c.args).includes(id)).length === 2 || undefined, 30_000);
    await waitFor("the release notice to the robot", async () => robot.posts.filter((p) => JSON.stringify(p.body).includes(id)).length === 2 || undefined, 30_000);
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

  it("a push registers the branch's schedules, and the scheduler starts the pipeline at its next slot, once", async () => {
    const repo = await app(
      "cron",
      `pipelines:\n  nightly:\n    on: { schedule: { cron: "* * * * *", branch: main } }\n    stages:\n      - build: { image: e2e-cron-${suffix} }\n`,
    );
    // No pipeline runs on the push itself; its file registers the schedule.
    const body = githubPush({ path: repo.path, sha: repo.sha, ref: "refs/heads/main", fullName: "acme/cron" });
    const res = await fetch(`${rt.url}/hooks/github`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": `cron-${suffix}`, "x-hub-signature-256": await signGitHub(body, SECRET) },
    });
    expect(res.status).toBe(202);
    const scheduled = await waitFor("a scheduled run of acme/cron", async () => (await api<{ runs: Run[] }>(rt.url, "/api/runs?repo=github:acme/cron")).runs[0], 150_000, 500);
    expect(scheduled).toMatchObject({ pipeline: "nightly", sha: repo.sha, branch: "main", trigger: { type: "schedule", cron: "* * * * *" } });
    expect((await finalRun(rt.url, scheduled.id, 180_000)).status).toBe("succeeded");
    // One run for its slot, however many ticks (one a second) passed in that minute.
    const slot = scheduled.trigger.type === "schedule" ? scheduled.trigger.slot : undefined;
    const runs = (await api<{ runs: Run[] }>(rt.url, "/api/runs?repo=github:acme/cron")).runs;
    expect(runs.filter((r) => r.trigger.type === "schedule" && r.trigger.slot === slot)).toHaveLength(1);
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
