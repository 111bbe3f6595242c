import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { githubPush } from "../../lib/demo/payloads.ts";
import { createSampleApp } from "../../lib/demo/sample-app.ts";
import { startLocal, type LocalRuntime } from "../../lib/local/runtime.ts";
import { Run } from "../../lib/pipeline/run.ts";
import { signGitHub } from "../../lib/scm/verify.ts";
import { runIds } from "../support/local.ts";
import { REGISTRY_URL, requireDocker, requireRegistry, uniqueSuffix } from "../support/docker.ts";
import { freePort } from "../support/haproxy.ts";
import { removeReleased } from "../support/releases.ts";

// The `hoist` CLI as a user runs it, against the real engine and registry of scripts/services.sh.
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "scripts", "hoist.mjs");
const REGISTRY = new URL(REGISTRY_URL).host;
const suffix = uniqueSuffix();
const SECRET = `cli-secret-${suffix}`;
const TOKEN = `cli-token-${suffix}-0123456789`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; the environment is this one minus anything pointing the CLI elsewhere. */
function exec(cmd: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  const base: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1" };
  for (const k of ["HOIST_URL", "HOIST_API_TOKEN", "GITHUB_WEBHOOK_SECRET", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "HOIST_QUEUE_URL"]) delete base[k];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The installed bin (scripts/hoist.mjs), as `npx hoist` runs it. */
function hoist(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  return exec(process.execPath, [BIN, ...args], env);
}

/** Resolves once `condition` holds, checking every 200 ms; rejects after `timeoutMs`. */
async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const show = (r: Result) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

let docker: Dockerode;
const dirs: string[] = [];
const localImages: string[] = [];
const manifests: string[] = [];

/** Remembers what a successful run left in the engine and the registry, for afterAll. */
function ownImages(localRef: string | undefined, pushedRef: string | undefined): void {
  if (localRef) localImages.push(localRef);
  if (pushedRef) {
    localImages.push(pushedRef);
    const m = /^([^/]+)\/([^:@]+)[:@]/.exec(pushedRef);
    if (m) manifests.push(m[2]!);
  }
}

beforeAll(async () => {
  docker = await requireDocker();
  await requireRegistry();
});

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  if (!docker) return;
  // The worker removes a finished job's container after recording the run, without waiting:
  // wait until no container uses our images any more, then untag them by reference (never
  // by force, so a shared base image stays).
  const users = async () => (await docker.listContainers({ all: true, filters: { ancestor: localImages } })).length;
  await until(async () => (await users()) === 0, 30_000).catch(() => undefined);
  for (const ref of localImages) await docker.getImage(ref).remove().catch(() => undefined);
});

describe("hoist demo", () => {
  it("pushes the sample app through build, test and push and prints the digest (--no-deploy)", async () => {
    const image = `hoist-e2e-demo-${suffix}`;
    const r = await exec("npx", ["tsx", "lib/cli/main.ts", "demo", "--image", image, "--no-deploy"], { HOIST_REGISTRY: REGISTRY });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^← 202 \{"delivery":\{"id":"d[0-9a-z]{24}","status":"pending"\},"duplicate":false\}/m);
    for (const stage of ["build", "test", "push"]) {
      expect(r.stdout, show(r)).toMatch(new RegExp(`▶ ${stage} started`));
      expect(r.stdout, show(r)).toMatch(new RegExp(`✓ ${stage} succeeded in \\S+`));
    }
    // Log lines stream under their stage.
    expect(r.stdout).toMatch(/│ Successfully built [0-9a-f]+/);
    expect(r.stdout).toMatch(/run r[0-9a-z]+ succeeded in /);
    const digest = /digest\s+(sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
    expect(digest, show(r)).toBeDefined();
    expect(r.stdout).toContain(`docker pull ${REGISTRY}/${image}@${digest}`);
    const local = /^\s+image\s+(\S+)/m.exec(r.stdout)?.[1];
    ownImages(local, local && `${REGISTRY}/${local}`);

    // What it says to pull is really there.
    const res = await fetch(`${REGISTRY_URL}/v2/${image}/manifests/${digest}`, {
      method: "HEAD",
      headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" },
    });
    expect(res.status).toBe(200);
  });

  it("releases the sample compose app behind a local router, then v2 with no failed request, then rolls back", async () => {
    const image = `hoist-e2e-demo-app-${suffix}`;
    const env = `demo-${suffix}`;
    const port = await freePort();
    try {
      const r = await exec("npx", ["tsx", "lib/cli/main.ts", "demo", "--image", image, "--environment", env, "--app-url", `http://127.0.0.1:${port}`], { HOIST_REGISTRY: REGISTRY });
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toMatch(/✓ deploy succeeded in \S+/);
      expect(r.stdout).toContain(`✓ released to ${env}: http://127.0.0.1:${port} answers "<h1>hello from hoist</h1>"`);
      expect(r.stdout).toMatch(/✓ v2: \S+ answers "<h1>hello from hoist, v2<\/h1>"; \d+ requests during the run, 0 failed/);
      expect(r.stdout).toMatch(/✓ release \S+ \(succeeded\): \S+ answers "<h1>hello from hoist<\/h1>"; \d+ requests during it, 0 failed/);
      const local = /^\s+image\s+(\S+)/m.exec(r.stdout)?.[1];
      ownImages(local, local && `${REGISTRY}/${local}`);
      // The app's three services ran; the counter (a named volume) was not restarted by v2 or the rollback.
      const counter = await docker.listContainers({ all: true, filters: { label: [`hoist.env=${env}`, "hoist.service=counter"] } });
      expect(counter.map((c) => c.State)).toEqual(["running"]);
    } finally {
      await removeReleased(docker, env);
      const pid = await readFile(join(ROOT, ".hoist", "router", String(port), "haproxy.pid"), "utf8").catch(() => "");
      if (pid.trim()) process.kill(Number(pid.trim()), "SIGTERM");
    }
  }, 300_000);
});

describe("hoist runs / run / logs against a running Hoist", () => {
  let runtime: LocalRuntime;
  let runId: string;
  let failedId: string;
  const image = `hoist-e2e-cli-${suffix}`;
  const repo = `e2e/${image}`;
  const api = () => ({ HOIST_URL: runtime.url, HOIST_API_TOKEN: TOKEN });

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), "hoist-e2e-cli-"));
    dirs.push(dir);
    runtime = await startLocal({
      HOIST_PORT: "0",
      HOIST_DATA_DIR: join(dir, "data"),
      HOIST_API_TOKEN: TOKEN,
      GITHUB_WEBHOOK_SECRET: SECRET,
      HOIST_ALLOW_LOCAL_REPOS: "1",
      HOIST_REGISTRY: REGISTRY,
      HOIST_LOG_LEVEL: "warn",
    });

    runId = await push(join(dir, "app"), { image }, repo);
    failedId = await push(join(dir, "failing"), { image: `${image}-fail`, test: "echo checking; exit 3" }, `${repo}-fail`);
  });

  /** A sample app pushed with a signed GitHub push, as the demo (and GitHub) sends it; answers the run id. */
  async function push(path: string, opts: { image: string; test?: string }, fullName: string): Promise<string> {
    const app = await createSampleApp(path, opts);
    const body = githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main", fullName });
    const res = await fetch(`${runtime.url}/hooks/github`, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": randomUUID(),
        "x-hub-signature-256": await signGitHub(body, SECRET),
      },
    });
    expect(res.status).toBe(202);
    return (await runIds(res, TOKEN))[0]!;
  }

  afterAll(async () => {
    await runtime?.stop();
  });

  it("run --watch and logs --follow go on until the run is final and exit 0 when it succeeded", async () => {
    // Started right after the push: the run is usually still going when they attach.
    const [watched, followed] = await Promise.all([hoist(["run", runId, "--watch", "--json"], api()), hoist(["logs", runId, "--follow"], api())]);
    expect(watched.code, show(watched)).toBe(0);
    const run = Run.parse(JSON.parse(watched.stdout));
    expect(run.status).toBe("succeeded");
    ownImages(run.image, run.stages.find((s) => s.spec.kind === "push")?.output?.image);

    expect(followed.code, show(followed)).toBe(0);
    const out = followed.stdout;
    // Each stage once, in order, from its header to its outcome; no line printed twice.
    const marks = [...out.matchAll(/^(=== \d \w+ ===|✓ \w+ succeeded in \S+)$/gm)].map((m) => m[1]!.replace(/ in \S+$/, ""));
    expect(marks, show(followed)).toEqual(["=== 0 build ===", "✓ build succeeded", "=== 1 test ===", "✓ test succeeded", "=== 2 push ===", "✓ push succeeded"]);
    expect(out.match(/^Successfully built [0-9a-f]+$/gm), show(followed)).toHaveLength(1);
    expect(out.match(/^pushing /gm), show(followed)).toHaveLength(1);
  });

  it("run --watch and logs --follow exit 1 when the run failed, and the table shows why", async () => {
    const [watched, followed] = await Promise.all([hoist(["run", failedId, "--watch"], api()), hoist(["logs", failedId, "--follow"], api())]);
    expect(watched.code, show(watched)).toBe(1);
    ownImages(/^image\s+(\S+)$/m.exec(watched.stdout)?.[1], undefined);
    expect(watched.stdout).toMatch(/^status\s+✗ failed$/m);
    expect(watched.stdout).toMatch(/^1\s+test\s+test\s+✗ failed\s+\S+\s+`echo checking; exit 3` exited with 3$/m);
    expect(watched.stdout).toMatch(/^2\s+push\s+push\s+- skipped\s+-$/m);
    expect(followed.code, show(followed)).toBe(1);
    expect(followed.stdout).toMatch(/^=== 1 test ===\nchecking\n✗ test failed in \S+\nerror: `echo checking; exit 3` exited with 3$/m);

    const table = await hoist(["runs", "--repo", `${repo}-fail`], api());
    expect(table.stdout, show(table)).toMatch(new RegExp(`^${failedId}\\s+${repo}-fail\\s+main\\s+main\\s+failed\\s+.*test: \`echo checking; exit 3\` exited with 3$`, "m"));
  });

  it("cancel stops a run's test in flight and removes its container; a second cancel says the run already ended", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hoist-e2e-cli-cancel-"));
    dirs.push(dir);
    const id = await push(join(dir, "slow"), { image: `${image}-slow`, test: "sleep 300" }, `${repo}-slow`);
    const testJob = () => docker.listContainers({ all: true, filters: { label: [`hoist.run=${id}`, "hoist.kind=test"] } });
    await until(async () => (await testJob()).some((c) => c.State === "running"), 120_000);

    const cancelled = await hoist(["cancel", id], api());
    expect(cancelled.code, show(cancelled)).toBe(0);
    expect(cancelled.stdout).toMatch(/^status\s+⊘ cancelled$/m);
    expect(cancelled.stdout).toContain(`hoist logs ${id} --follow`);
    await until(async () => (await testJob()).length === 0, 60_000);
    const logs = await hoist(["logs", id, "--follow"], api());
    expect(logs.stdout, show(logs)).toMatch(/hoist: cancelled by the API: job \S+ removed/);
    ownImages(/^image\s+(\S+)$/m.exec(cancelled.stdout)?.[1], undefined);

    const again = await hoist(["cancel", id], api());
    expect(again.code, show(again)).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`run ${id} already cancelled: nothing to cancel`));
  });

  it("runs --json lists the run, and filters by repo and status", async () => {
    const Page = z.object({ runs: z.array(Run), cursor: z.string().optional() });
    const [all, mine, prefixed, none, table] = await Promise.all([
      hoist(["runs", "--json"], api()),
      hoist(["runs", "--json", "--repo", repo, "--status", "succeeded", "--limit", "5"], api()),
      hoist(["runs", "--json", "--repo", `github:${repo}`], api()),
      hoist(["runs", "--json", "--repo", repo, "--status", "failed"], api()),
      hoist(["runs", "--repo", repo], api()),
    ]);
    for (const r of [all, mine, prefixed, none, table]) expect(r.code, show(r)).toBe(0);
    const listed = Page.parse(JSON.parse(all.stdout)).runs.find((r) => r.id === runId);
    expect(listed).toMatchObject({ id: runId, status: "succeeded", branch: "main", pipeline: "main", repo: { fullName: repo } });
    // A bare owner/name is looked up as a GitHub repository, like github:owner/name.
    expect(Page.parse(JSON.parse(mine.stdout)).runs.map((r) => r.id)).toEqual([runId]);
    expect(Page.parse(JSON.parse(prefixed.stdout)).runs.map((r) => r.id)).toEqual([runId]);
    expect(Page.parse(JSON.parse(none.stdout)).runs).toEqual([]);
    expect(table.stdout).toMatch(/^ID\s+REPO\s+BRANCH\/TAG\s+PIPELINE\s+STATUS\s+AGE\s+DURATION\s+ERROR$/m);
    expect(table.stdout).toMatch(new RegExp(`^${runId}\\s+${repo}\\s+main\\s+main\\s+succeeded\\s+`, "m"));
  });

  it("run <id> --json shows the run with each stage succeeded and the digest", async () => {
    const r = await hoist(["run", runId, "--json"], api());
    expect(r.code, show(r)).toBe(0);
    const run = Run.parse(JSON.parse(r.stdout));
    expect(run.id).toBe(runId);
    expect(run.stages.map((s) => [s.name, s.status])).toEqual([
      ["build", "succeeded"],
      ["test", "succeeded"],
      ["push", "succeeded"],
    ]);
    expect(run.digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const text = await hoist(["run", runId], api());
    expect(text.code, show(text)).toBe(0);
    expect(text.stdout).toMatch(/^status\s+✓ succeeded$/m);
    expect(text.stdout).toMatch(/^0\s+build\s+build\s+✓ succeeded\s+\S+$/m);
    expect(text.stdout).toContain(`docker pull ${REGISTRY}/${image}@${run.digest}`);
  });

  it("logs <id> prints every stage's log under a header", async () => {
    const r = await hoist(["logs", runId], api());
    expect(r.code, show(r)).toBe(0);
    const headers = [...r.stdout.matchAll(/^=== (\d) (\w+) \((\w+)(?:, \S+)?\) ===$/gm)].map((m) => [m[1], m[2], m[3]]);
    expect(headers).toEqual([
      ["0", "build", "succeeded"],
      ["1", "test", "succeeded"],
      ["2", "push", "succeeded"],
    ]);
    expect(r.stdout).toMatch(/Successfully built [0-9a-f]+/);
    expect(r.stdout).toContain(`pushing ${image}:`);

    const one = await hoist(["logs", runId, "--stage", "push"], api());
    expect(one.code, show(one)).toBe(0);
    expect(one.stdout).toMatch(/^=== 2 push \(succeeded/);
    expect(one.stdout).not.toContain("=== 0 build");

    // On a final run, --follow prints what there is once and exits with the run's outcome.
    const followed = await hoist(["logs", runId, "--follow", "--stage", "0"], api());
    expect(followed.code, show(followed)).toBe(0);
    expect(followed.stdout).toMatch(/^=== 0 build ===\n(.*\n)*Successfully built [0-9a-f]+\n(.*\n)*✓ build succeeded in \S+\n$/);
  });

  it("says what to do when the token is wrong, the run unknown, the server down or HOIST_URL no URL", async () => {
    // A port nobody listens on: taken, then released.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const [badToken, noToken, unknown, badStage, down, badUrl] = await Promise.all([
      hoist(["runs"], { HOIST_URL: runtime.url, HOIST_API_TOKEN: "not-the-token-at-all" }),
      hoist(["runs"], { HOIST_URL: runtime.url }),
      hoist(["run", "rnope"], api()),
      hoist(["logs", runId, "--stage", "deploy"], api()),
      hoist(["runs", "--url", `http://127.0.0.1:${port}`], { HOIST_API_TOKEN: TOKEN }),
      hoist(["runs"], { HOIST_URL: runtime.url.replace("http://", "") }),
    ]);
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toContain("the server refused the API token (401): set HOIST_API_TOKEN to the server's token");
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain("no API token (401): set HOIST_API_TOKEN to the server's token");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no run rnope");
    expect(badStage.code).toBe(1);
    expect(badStage.stderr).toContain('has no stage "deploy"');
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`is \`hoist start\` running at http://127.0.0.1:${port}?`);
    expect(down.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(badUrl.code, show(badUrl)).toBe(2);
    expect(badUrl.stderr).toContain("HOIST_URL: must be an http:// or https:// URL");
  });
});

afterAll(async () => {
  // Manifests of the repositories these tests pushed (our registry enables deletes).
  for (const name of manifests) {
    const tags = (await fetch(`${REGISTRY_URL}/v2/${name}/tags/list`).then((r) => r.json()).catch(() => ({}))) as { tags?: string[] };
    for (const tag of tags.tags ?? []) {
      const head = await fetch(`${REGISTRY_URL}/v2/${name}/manifests/${tag}`, {
        method: "HEAD",
        headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" },
      }).catch(() => undefined);
      const digest = head?.headers.get("docker-content-digest");
      if (digest) await fetch(`${REGISTRY_URL}/v2/${name}/manifests/${digest}`, { method: "DELETE" }).catch(() => undefined);
    }
  }
});
