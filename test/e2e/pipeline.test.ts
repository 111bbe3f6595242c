import { mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubPush, gitlabPush } from "../../lib/demo/payloads.ts";
import { commitAll, createSampleApp } from "../../lib/demo/sample-app.ts";
import type { LocalRuntime } from "../../lib/local/runtime.ts";
import { REGISTRY_URL, uniqueSuffix } from "../support/docker.ts";
import { API_TOKEN, api, finalRun, logsOf, sendGitHubPush, sendGitLabPush, startRuntime } from "../support/local.ts";
import { requireDocker } from "../support/docker.ts";
import { waitFor } from "../support/wait.ts";
import type { Run } from "../../lib/pipeline/run.ts";

let rt: LocalRuntime;
const suffix = uniqueSuffix();

beforeAll(async () => {
  rt = await startRuntime();
});
afterAll(async () => {
  await rt?.stop();
});

/** The registry serves the manifest by digest: the image can be pulled by what the run recorded. */
async function manifestStatus(image: string, digest: string): Promise<number> {
  const res = await fetch(`${REGISTRY_URL}/v2/${image}/manifests/${digest}`, {
    method: "HEAD",
    headers: { accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" },
  });
  return res.status;
}

describe("push to image, end to end (real engine, registry, dynalite, local-aws-sqs)", () => {
  it("a GitHub push (recorded @octokit/webhooks-examples payload) builds, tests and pushes", async () => {
    const image = `e2e-gh-${suffix}`;
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-app-")), { image });
    const [id] = await sendGitHubPush(rt.url, githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main", fullName: "acme/e2e" }));
    const run = await finalRun(rt.url, id!);
    expect(run.status, run.error).toBe("succeeded");
    expect(run.stages.map((s) => [s.name, s.status])).toEqual([["build", "succeeded"], ["test", "succeeded"], ["push", "succeeded"]]);
    expect(run.image).toBe(`${image}:${app.sha}`);
    expect(run.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await manifestStatus(image, run.digest!)).toBe(200);
    // Pulled by the recorded digest, the image is the one the run tested.
    const docker = await requireDocker();
    const byDigest = `127.0.0.1:5000/${image}@${run.digest}`;
    await new Promise<void>((resolve, reject) =>
      docker.pull(byDigest, {}, (err: unknown, stream?: NodeJS.ReadableStream) =>
        err || !stream ? reject(err) : docker.modem.followProgress(stream, (e: unknown) => (e ? reject(e) : resolve())),
      ),
    );
    expect((await docker.getImage(byDigest).inspect()).RepoDigests).toContain(byDigest);
    const logs = await logsOf(rt.url, id!);
    expect(logs).toContain(`Successfully tagged ${image}:${app.sha}`);
    expect(logs).toContain(`pushed 127.0.0.1:5000/${image}@${run.digest}`);
  });

  it("a GitLab push (documented Push Hook payload) builds, tests and pushes", async () => {
    const image = `e2e-gl-${suffix}`;
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-app-")), { image, branch: "master" });
    const [id] = await sendGitLabPush(rt.url, gitlabPush({ path: app.path, sha: app.sha, ref: "refs/heads/master", fullName: "group/e2e" }));
    const run = await finalRun(rt.url, id!);
    expect(run.status, run.error).toBe("succeeded");
    expect(run.repo).toMatchObject({ provider: "gitlab", fullName: "group/e2e" });
    expect(await manifestStatus(image, run.digest!)).toBe(200);
  });

  it("a failing test command fails the run at that stage, keeps its output, and skips the push", async () => {
    const image = `e2e-fail-${suffix}`;
    const test = "echo checking the page; echo 'expected <h2>, found <h1>' >&2; exit 3";
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-app-")), { image, test });
    const [id] = await sendGitHubPush(rt.url, githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main" }));
    const run = await finalRun(rt.url, id!);
    expect(run.status).toBe("failed");
    expect(run.stages.map((s) => s.status)).toEqual(["succeeded", "failed", "skipped"]);
    expect(run.stages[1]).toMatchObject({ output: { exitCode: 3 } });
    expect(run.error).toMatch(/^test: .*exited with 3/);
    const logs = await logsOf(rt.url, id!);
    expect(logs).toContain("checking the page");
    expect(logs).toContain("expected <h2>, found <h1>");
    expect(run.digest).toBeUndefined();
  });

  it("a second push of the same sha reuses the image instead of rebuilding it", async () => {
    const image = `e2e-once-${suffix}`;
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-app-")), { image });
    const payload = githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main" });
    const first = await finalRun(rt.url, (await sendGitHubPush(rt.url, payload))[0]!);
    const second = await finalRun(rt.url, (await sendGitHubPush(rt.url, payload))[0]!);
    expect([first.status, second.status]).toEqual(["succeeded", "succeeded"]);
    expect(second.stages[0]?.output).toMatchObject({ cached: true, image: `${image}:${app.sha}` });
    expect(second.digest).toBe(first.digest);
  });

  it("a Dockerfile that does not build fails the build stage with the builder's output", async () => {
    const image = `e2e-nobuild-${suffix}`;
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-app-")), { image, dockerfileExtra: "RUN echo compiling && exit 7" });
    const run = await finalRun(rt.url, (await sendGitHubPush(rt.url, githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main" })))[0]!);
    expect(run.status).toBe("failed");
    expect(run.stages.map((s) => s.status)).toEqual(["failed", "skipped", "skipped"]);
    expect(await logsOf(rt.url, run.id)).toMatch(/compiling[\s\S]*returned a non-zero code: 7/);
  });

  it("a repository with a symlink that leads out of it (a build context through it, say) is refused before the build, naming the entry", async () => {
    const image = `e2e-escape-${suffix}`;
    const dir = await mkdtemp(join(tmpdir(), "hoist-app-"));
    await createSampleApp(dir, { image });
    await symlink("..", join(dir, "escape"));
    await writeFile(join(dir, ".hoist.yml"), `pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages:\n      - build: { image: ${image}, context: escape }\n`);
    const app = await commitAll(dir, "main", "a context that leaves the checkout");
    const run = await finalRun(rt.url, (await sendGitHubPush(rt.url, githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main" })))[0]!);
    expect(run.status).toBe("failed");
    // Refused as the archive reaches the builder, a permanent failure (not retried as an outage).
    expect(run.stages[0]!.error).toMatch(/the archive entry "escape" is refused: its symlink target "\.\." points outside the archive/);
  });

  it("a cancel stops the test in flight: the run ends cancelled and its container is gone", async () => {
    const docker = await requireDocker();
    const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-app-")), { image: `e2e-cancel-${suffix}`, test: "echo started; sleep 120" });
    const [id] = await sendGitHubPush(rt.url, githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main" }));
    const running = await waitFor("the test stage to run", async () => {
      const run = await api<Run>(rt.url, `/api/runs/${id}`);
      return run.stages[1]?.status === "running" ? run : undefined;
    });
    const res = await fetch(`${rt.url}/api/runs/${id}/cancel`, { method: "POST", headers: { authorization: `Bearer ${API_TOKEN}` } });
    expect(res.status).toBe(202);
    const run = await finalRun(rt.url, id!);
    expect(run.status).toBe("cancelled");
    expect(run.stages.map((s) => s.status)).toEqual(["succeeded", "cancelled", "skipped"]);
    await waitFor("the test container to be removed", async () => (await docker.getContainer(running.stages[1]!.job!).inspect().then(() => false, () => true)) || undefined);
    const again = await fetch(`${rt.url}/api/runs/${id}/cancel`, { method: "POST", headers: { authorization: `Bearer ${API_TOKEN}` } });
    expect(again.status).toBe(409);
  });
});
