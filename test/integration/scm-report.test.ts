import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.ts";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import { createRunReporter, type RunReporter, type RunReporterConfig } from "../../lib/scm/report.ts";
import { startProviderRecorder, type ProviderRecorder, type RecordedRequest } from "../support/provider-recorder.ts";
import { DEPLOY, decided, deployRun, finished, gateOpened, GITHUB_REPO, GITLAB_REPO, SHA, started, steps, successfulLife } from "../support/report-runs.ts";

/**
 * The reporter through the real clients (octokit, gitbeaker) against a stand-in for both
 * providers' APIs on a loopback port (test/support/provider-recorder.ts), which records each
 * request and answers as GitHub and GitLab document.
 */

const GITHUB_TOKEN = "ghp_reporterTestToken0000000000000000000001";
const GITLAB_TOKEN = "glpat-reporterTestToken00000000001";
const RUN_URL = "https://hoist.example.com/runs/r1";

let recorder: ProviderRecorder;
const logLines: string[] = [];
// No secrets given to the logger: a token in a line would show, not be redacted.
const log = createLogger("debug", [], { write: (line: string) => void logLines.push(line) });

beforeAll(async () => {
  recorder = await startProviderRecorder();
});
afterAll(async () => {
  await recorder.close();
});
beforeEach(() => {
  recorder.reset();
});

function reporterFor(more: Partial<RunReporterConfig> = {}): RunReporter {
  return createRunReporter({
    github: { token: GITHUB_TOKEN, baseUrl: recorder.url },
    gitlab: { token: GITLAB_TOKEN, baseUrl: recorder.url },
    runUrl: () => RUN_URL,
    log,
    timeoutMs: 2000,
    retry: { attempts: 3, baseMs: 20, maxWaitMs: 2000 },
    // One report at a time: the requests come in a known order.
    concurrency: 1,
    ...more,
  });
}

/** A request in a line: method, path, query, what the recorder answered, and the body's fields that matter. */
function line(r: RecordedRequest): string {
  const query = new URLSearchParams(r.query).toString();
  const b = (r.body ?? {}) as Record<string, unknown>;
  const said = [b.state, b.status, b.context ?? b.name, b.description, b.environment, b.sha, b.ref, b.tag, b.task, b.auto_merge, b.required_contexts, b.payload, b.target_url ?? b.log_url]
    .filter((v) => v !== undefined)
    .map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
  return `${r.method} ${r.path}${query ? `?${query}` : ""} → ${r.status}${said.length ? ` | ${said.join(" | ")}` : ""}`.replaceAll(SHA, "SHA");
}

/** Shows the reporter each run after the one before, waiting for its reports: the requests each change made. */
async function walk(reporter: RunReporter, runs: Run[], from = 0): Promise<string[][]> {
  const made: string[][] = [];
  for (let i = from; i < runs.length; i++) {
    reporter.report(runs[i - 1], runs[i]!);
    await reporter.flush();
    made.push(recorder.requests.splice(0).map(line));
  }
  return made;
}

const gh = "/repos/octo-org/app";
const gl = "/api/v4/projects/15";

describe("a run's life, reported", () => {
  it("GitHub: a commit status per stage transition, and a deployment created when the release starts and updated when it ends", async () => {
    const made = await walk(reporterFor(), successfulLife(GITHUB_REPO));
    const status = (state: string, stage: string, description: string) => `POST ${gh}/statuses/SHA → 201 | ${state} | hoist/main/${stage} | ${description} | ${RUN_URL}`;
    expect(made).toEqual([
      ["build", "test", "push", "deploy"].map((s) => status("pending", s, "queued")),
      [status("pending", "build", "running")],
      [status("success", "build", "succeeded in 400ms")],
      [status("pending", "test", "running")],
      [status("success", "test", "succeeded in 700ms")],
      [status("pending", "push", "running")],
      [status("success", "push", "succeeded in 100ms")],
      [status("pending", "deploy", "waiting for approval")],
      [status("pending", "deploy", "queued")],
      [
        status("pending", "deploy", "running"),
        `GET ${gh}/deployments?sha=SHA&environment=staging&task=deploy&per_page=100 → 200`,
        `POST ${gh}/deployments → 201 | releasing to staging | staging | SHA | deploy | false | [] | {"run":"r1","stage":"deploy","attempt":1}`,
        `POST ${gh}/deployments/1/statuses → 201 | in_progress | releasing to staging | ${RUN_URL}`,
      ],
      [
        status("success", "deploy", "succeeded in 3.2s"),
        `GET ${gh}/deployments?sha=SHA&environment=staging&task=deploy&per_page=100 → 200`,
        `POST ${gh}/deployments/1/statuses → 201 | success | succeeded in 3.2s | ${RUN_URL}`,
      ],
    ]);
  });

  it("GitLab: a commit status per stage transition (a wait it already shows is not an error), and a deployment created running and updated", async () => {
    const made = await walk(reporterFor(), successfulLife(GITLAB_REPO));
    const status = (state: string, stage: string, description: string, answer = 201) =>
      `POST ${gl}/statuses/SHA → ${answer} | ${state} | hoist/main/${stage} | ${description} | main | ${RUN_URL}`;
    expect(made).toEqual([
      ["build", "test", "push", "deploy"].map((s) => status("pending", s, "queued")),
      [status("running", "build", "running")],
      [status("success", "build", "succeeded in 400ms")],
      [status("running", "test", "running")],
      [status("success", "test", "succeeded in 700ms")],
      [status("running", "push", "running")],
      [status("success", "push", "succeeded in 100ms")],
      // Pending already: GitLab answers 400 "Cannot transition status", which is no failure, and is not retried.
      [status("pending", "deploy", "waiting for approval", 400)],
      [status("pending", "deploy", "queued", 400)],
      [
        status("running", "deploy", "running"),
        `GET ${gl}/deployments?environment=staging&order_by=id&sort=desc&per_page=20 → 200`,
        `POST ${gl}/deployments → 201 | running | staging | SHA | main | false`,
      ],
      [status("success", "deploy", "succeeded in 3.2s"), `GET ${gl}/deployments?environment=staging&order_by=id&sort=desc&per_page=20 → 200`, `PUT ${gl}/deployments/1 → 200 | success`],
    ]);
  });

  it.each([
    ["GitHub", GITHUB_REPO, (r: RecordedRequest) => r.authorization === `token ${GITHUB_TOKEN}`],
    ["GitLab", GITLAB_REPO, (r: RecordedRequest) => r.privateToken === GITLAB_TOKEN],
  ] as const)("%s: every request carries the token, and reporting the same change again reports nothing", async (_name, repo, authorized) => {
    const reporter = reporterFor();
    const [first, second] = successfulLife(repo);
    reporter.report(undefined, first!);
    await reporter.flush();
    reporter.report(first, second!);
    await reporter.flush();
    expect(recorder.requests.length).toBe(5);
    expect(recorder.requests.every(authorized)).toBe(true);
    reporter.report(second, second!);
    await reporter.flush();
    expect(recorder.requests.length).toBe(5);
  });
});

/** The life up to the release's start (its last two changes: the release runs, then succeeds). */
function releaseSteps(repo: RepoRef): Run[] {
  return steps(deployRun(repo), [started(0, 1), finished(0, 2), started(1, 3), finished(1, 4), started(2, 5), finished(2, 6), gateOpened(7), decided(8), started(DEPLOY, 9), finished(DEPLOY, 10)]);
}

describe("a deployment is made once, whatever is retried", () => {
  it("GitHub: a lost answer to the creation and a failed status are retried, found again by the payload, never made twice", async () => {
    const runs = releaseSteps(GITHUB_REPO);
    const reporter = reporterFor();
    await walk(reporter, runs.slice(0, -2));
    recorder.failNext(1, { match: (r) => r.method === "POST" && r.path === `${gh}/deployments`, afterApplying: true });
    recorder.failNext(1, { match: (r) => r.method === "POST" && /\/deployments\/\d+\/statuses$/.test(r.path) });
    const [running, succeeded] = await walk(reporter, runs, runs.length - 2);
    expect(running!.filter((l) => l.includes("/deployments")).map((l) => l.replace(/ \|.*/, ""))).toEqual([
      `GET ${gh}/deployments?sha=SHA&environment=staging&task=deploy&per_page=100 → 200`,
      `POST ${gh}/deployments → 500`,
      `GET ${gh}/deployments?sha=SHA&environment=staging&task=deploy&per_page=100 → 200`,
      expect.stringMatching(new RegExp(`^POST ${gh}/deployments/\\d+/statuses → 500$`)),
      `GET ${gh}/deployments?sha=SHA&environment=staging&task=deploy&per_page=100 → 200`,
      expect.stringMatching(new RegExp(`^POST ${gh}/deployments/\\d+/statuses → 201$`)),
    ]);
    expect(succeeded!.filter((l) => l.startsWith(`POST ${gh}/deployments →`))).toEqual([]);
    const listed = await fetch(`${recorder.url}${gh}/deployments?sha=${SHA}`).then((r) => r.json() as Promise<unknown[]>);
    expect(listed).toHaveLength(1);
  });

  it("GitLab: a lost answer to the creation is found again among the environment's newest, then updated", async () => {
    const runs = releaseSteps(GITLAB_REPO);
    const reporter = reporterFor();
    await walk(reporter, runs.slice(0, -2));
    recorder.failNext(1, { match: (r) => r.method === "POST" && r.path === `${gl}/deployments`, afterApplying: true });
    const [running, succeeded] = await walk(reporter, runs, runs.length - 2);
    const deployments = (ls: string[]) => ls.filter((l) => l.includes("/deployments")).map((l) => l.replace(/ \|.*/, ""));
    expect(deployments(running!)).toEqual([
      `GET ${gl}/deployments?environment=staging&order_by=id&sort=desc&per_page=20 → 200`,
      `POST ${gl}/deployments → 500`,
      `GET ${gl}/deployments?environment=staging&order_by=id&sort=desc&per_page=20 → 200`,
    ]);
    expect(deployments(succeeded!)).toEqual([`GET ${gl}/deployments?environment=staging&order_by=id&sort=desc&per_page=20 → 200`, expect.stringMatching(new RegExp(`^PUT ${gl}/deployments/\\d+ → 200$`))]);
  });
});

describe("a provider that fails", () => {
  it.each([
    ["GitHub", GITHUB_REPO, `${gh}/statuses/${SHA}`],
    ["GitLab", GITLAB_REPO, `${gl}/statuses/${SHA}`],
  ] as const)("%s answering 500 twice: the third try lands", async (_name, repo, path) => {
    const reporter = reporterFor();
    recorder.failNext(2);
    const [first, second] = successfulLife(repo);
    reporter.report(first, second!);
    await reporter.flush();
    expect(recorder.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([`POST ${path} 500`, `POST ${path} 500`, `POST ${path} 201`]);
  });

  it.each([
    ["GitHub", GITHUB_REPO, { status: 403, headers: { "retry-after": "1", "x-ratelimit-remaining": "4000" } }],
    ["GitLab", GITLAB_REPO, { status: 429, headers: { "retry-after": "1" } }],
  ] as const)("%s rate limiting: the next try waits the Retry-After it asks", async (_name, repo, fault) => {
    const reporter = reporterFor();
    recorder.failNext(1, fault);
    const [first, second] = successfulLife(repo);
    reporter.report(first, second!);
    await reporter.flush();
    const [limited, landed] = recorder.requests;
    expect([limited?.status, landed?.status]).toEqual([fault.status, 201]);
    expect(landed!.at - limited!.at).toBeGreaterThanOrEqual(950);
  });

  it("GitLab without `skipped`: the status falls back to canceled", async () => {
    const reporter = reporterFor();
    recorder.failNext(1, { status: 400, body: { error: "state does not have a valid value" }, match: (r) => (r.body as { state?: string } | undefined)?.state === "skipped" });
    const runs = steps(deployRun(GITLAB_REPO), [started(0, 1), finished(0, 2, "no Dockerfile")]);
    const [failed] = await walk(reporter, runs, 2);
    expect(failed!.map((l) => l.replace(/ \| (main|https).*/, ""))).toEqual([
      `POST ${gl}/statuses/SHA → 201 | failed | hoist/main/build | no Dockerfile`,
      `POST ${gl}/statuses/SHA → 400 | skipped | hoist/main/test | skipped: build failed`,
      `POST ${gl}/statuses/SHA → 201 | canceled | hoist/main/test | skipped: build failed`,
      `POST ${gl}/statuses/SHA → 201 | skipped | hoist/main/push | skipped: build failed`,
      `POST ${gl}/statuses/SHA → 201 | skipped | hoist/main/deploy | skipped: build failed`,
    ]);
  });

  it("a refused token is not retried, and the log says which variable to check", async () => {
    const reporter = reporterFor();
    recorder.failNext(1, { status: 401, body: { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" } });
    const [first, second] = successfulLife(GITHUB_REPO);
    const before = logLines.length;
    reporter.report(first, second!);
    await reporter.flush();
    expect(recorder.requests).toHaveLength(1);
    const lines = logLines.slice(before).map((l) => JSON.parse(l) as { msg: string; error?: string });
    expect(lines).toContainEqual(expect.objectContaining({ msg: "report refused; not tried again", error: expect.stringContaining("check that GITHUB_TOKEN may write commit statuses") }));
  });

  it.each([
    ["answers 500", { status: 500 }],
    ["never answers", { hang: true }],
  ] as const)("down for good (%s): report never throws, and flush resolves within the deadline", async (_what, fault) => {
    const reporter = reporterFor({ timeoutMs: 300, retry: { attempts: 3, baseMs: 20, maxWaitMs: 100 }, concurrency: 4 });
    recorder.failNext(Infinity, fault);
    const before = logLines.length;
    const started = Date.now();
    for (const repo of [GITHUB_REPO, GITLAB_REPO]) {
      const [first, second] = successfulLife(repo, `r-${repo.provider}`);
      expect(() => reporter.report(undefined, first!)).not.toThrow();
      expect(() => reporter.report(first, second!)).not.toThrow();
    }
    expect(Date.now() - started).toBeLessThan(50);
    // 8 statuses, 4 at a time, 3 tries each of at most 300 ms, and at most 100 ms between tries.
    await reporter.flush();
    expect(Date.now() - started).toBeLessThan(2 * 3 * 300 + 2 * 2 * 100 + 1500);
    const gaveUp = logLines.slice(before).filter((l) => l.includes("report given up after 3 tries"));
    expect(gaveUp).toHaveLength(8);
  });
});

afterAll(() => {
  // Every line of every test above: the tokens reached the providers, never the log.
  expect(logLines.length).toBeGreaterThan(50);
  for (const line of logLines) {
    expect(line).not.toContain(GITHUB_TOKEN);
    expect(line).not.toContain(GITLAB_TOKEN);
  }
});
