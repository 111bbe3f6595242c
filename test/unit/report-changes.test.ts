import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { derive } from "../../lib/pipeline/machine.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import { STAGE_STATUSES, type StageStatus } from "../../lib/pipeline/statuses.ts";
import {
  GITHUB_COMMIT_STATE,
  GITHUB_DEPLOYMENT_STATE,
  GITLAB_COMMIT_STATE,
  GITLAB_DEPLOYMENT_STATE,
  MAX_DESCRIPTION,
  reportsBetween,
  type Report,
} from "../../lib/scm/report-changes.ts";
import { DEPLOY, decided, deployRun, finished, gateOpened, GITLAB_REPO, SHA, started, steps, stop, successfulLife } from "../support/report-runs.ts";

const URL = "https://hoist.example.com/runs/r1";

/** What each change of a run's life reports, change by change. */
function reportsOf(runs: Run[]): Report[][] {
  return runs.map((run, i) => reportsBetween(runs[i - 1], run, URL));
}

/** A report in a line: kind, context, the state each provider is sent, description. */
function brief(r: Report): string {
  return r.kind === "status"
    ? `status ${r.context} ${r.status} (github ${GITHUB_COMMIT_STATE[r.status]}, gitlab ${GITLAB_COMMIT_STATE[r.status]}): ${r.description}`
    : `deployment ${r.environment} ${r.state} (github ${GITHUB_DEPLOYMENT_STATE[r.state]}, gitlab ${GITLAB_DEPLOYMENT_STATE[r.state]}): ${r.description}`;
}

describe("reportsBetween: a run's life", () => {
  it("reports every stage when the run is first seen, then one status per stage transition, and the deploy's deployment once it runs", () => {
    expect(reportsOf(successfulLife()).map((rs) => rs.map(brief))).toEqual([
      [
        "status hoist/main/build pending (github pending, gitlab pending): queued",
        "status hoist/main/test pending (github pending, gitlab pending): queued",
        "status hoist/main/push pending (github pending, gitlab pending): queued",
        "status hoist/main/deploy pending (github pending, gitlab pending): queued",
      ],
      ["status hoist/main/build running (github pending, gitlab running): running"],
      ["status hoist/main/build succeeded (github success, gitlab success): succeeded in 400ms"],
      ["status hoist/main/test running (github pending, gitlab running): running"],
      ["status hoist/main/test succeeded (github success, gitlab success): succeeded in 700ms"],
      ["status hoist/main/push running (github pending, gitlab running): running"],
      ["status hoist/main/push succeeded (github success, gitlab success): succeeded in 100ms"],
      // At its gate the deploy has not started: a status, no deployment.
      ["status hoist/main/deploy waiting (github pending, gitlab pending): waiting for approval"],
      ["status hoist/main/deploy pending (github pending, gitlab pending): queued"],
      [
        "status hoist/main/deploy running (github pending, gitlab running): running",
        "deployment staging running (github in_progress, gitlab running): releasing to staging",
      ],
      [
        "status hoist/main/deploy succeeded (github success, gitlab success): succeeded in 3.2s",
        "deployment staging succeeded (github success, gitlab success): succeeded in 3.2s",
      ],
    ]);
  });

  it("each report names the run, its attempt, commit, ref and the run's page", () => {
    const [, running] = successfulLife(GITLAB_REPO);
    expect(reportsBetween(undefined, running!, URL)[0]).toEqual({
      kind: "status",
      runId: "r1",
      attempt: 1,
      repo: GITLAB_REPO,
      sha: SHA,
      ref: "main",
      tag: false,
      context: "hoist/main/build",
      stage: "build",
      description: "running",
      url: URL,
      status: "running",
    });
  });

  it("a tag's run names the tag", () => {
    const run = { ...deployRun(), ref: "refs/tags/v1.2.0", tag: "v1.2.0" };
    const { branch: _branch, ...tagged } = run;
    expect(reportsBetween(undefined, tagged, URL)[0]).toMatchObject({ ref: "v1.2.0", tag: true });
  });

  it("a failed stage says its error; the stages after it are skipped, which GitHub shows as success", () => {
    const runs = steps(deployRun(), [started(0, 2000), finished(0, 2100), started(1, 2200), finished(1, 2300, "npm test exited 1\n\n  3 failing")]);
    expect(reportsOf(runs).at(-1)!.map(brief)).toEqual([
      "status hoist/main/test failed (github failure, gitlab failed): npm test exited 1 3 failing",
      "status hoist/main/push skipped (github success, gitlab skipped): skipped: test failed",
      "status hoist/main/deploy skipped (github success, gitlab skipped): skipped: test failed",
    ]);
  });

  it("a failed release fails its deployment too", () => {
    const runs = steps(deployRun(), [started(0, 1), finished(0, 2), started(1, 3), finished(1, 4), started(2, 5), finished(2, 6), gateOpened(7), decided(8), started(DEPLOY, 9), finished(DEPLOY, 10, "health check failed")]);
    expect(reportsOf(runs).at(-1)!.map(brief)).toEqual([
      "status hoist/main/deploy failed (github failure, gitlab failed): health check failed",
      "deployment staging failed (github failure, gitlab failed): health check failed",
    ]);
  });

  it("a release cancelled while it runs: the status fails as cancelled, the deployment goes inactive", () => {
    const runs = steps(deployRun(), [started(0, 1), finished(0, 2), started(1, 3), finished(1, 4), started(2, 5), finished(2, 6), gateOpened(7), decided(8), started(DEPLOY, 9), stop(10, "cancelled", "cancelled by bob")]);
    expect(reportsOf(runs).at(-1)!.map(brief)).toEqual([
      "status hoist/main/deploy cancelled (github failure, gitlab canceled): cancelled by bob",
      "deployment staging cancelled (github inactive, gitlab canceled): cancelled by bob",
    ]);
  });

  it("a run cancelled before its release started has no deployment; the stages after the cancelled one are skipped", () => {
    const runs = steps(deployRun(), [started(0, 1), stop(2, "cancelled", "cancelled by bob")]);
    expect(reportsOf(runs).at(-1)!.map(brief)).toEqual([
      "status hoist/main/build cancelled (github failure, gitlab canceled): cancelled by bob",
      "status hoist/main/test skipped (github success, gitlab skipped): skipped: the run was cancelled",
      "status hoist/main/push skipped (github success, gitlab skipped): skipped: the run was cancelled",
      "status hoist/main/deploy skipped (github success, gitlab skipped): skipped: the run was cancelled",
    ]);
  });

  it("a deploy rejected at its gate fails without a deployment", () => {
    const runs = steps(deployRun(), [started(0, 1), finished(0, 2), started(1, 3), finished(1, 4), started(2, 5), finished(2, 6), gateOpened(7), decided(8, false)]);
    const last = reportsOf(runs).at(-1)!;
    expect(last).toHaveLength(1);
    expect(last[0]).toMatchObject({ kind: "status", context: "hoist/main/deploy", status: "failed" });
  });

  it("a run without stages (its pipeline file could not be used) has one status of its own", () => {
    const run = derive({ ...deployRun(), pipeline: ".hoist.yml", stages: [], stopped: { at: 1, status: "failed", reason: ".hoist.yml:6: pipelines.main.stages[1].test.timeout: Invalid input" } });
    expect(reportsBetween(undefined, run, URL).map(brief)).toEqual([
      "status hoist/.hoist.yml failed (github failure, gitlab failed): .hoist.yml:6: pipelines.main.stages[1].test.timeout: Invalid input",
    ]);
    expect(reportsBetween(run, run, URL)).toEqual([]);
  });

  it("a long error becomes one line of at most 140 characters", () => {
    const error = `${"é".repeat(100)}\n${"x".repeat(400)}`;
    const runs = steps(deployRun(), [started(0, 1), finished(0, 2, error)]);
    const description = reportsOf(runs).at(-1)![0]!.description;
    expect(Array.from(description)).toHaveLength(MAX_DESCRIPTION);
    expect(description).toMatch(/^é{100} x+…$/);
  });
});

describe("reportsBetween: idempotent", () => {
  const life = successfulLife();

  it("the same change gives the same reports, and a run that did not change gives none", () => {
    life.forEach((run, i) => {
      expect(reportsBetween(life[i - 1], run, URL)).toEqual(reportsBetween(life[i - 1], run, URL));
      expect(reportsBetween(run, run, URL)).toEqual([]);
    });
  });

  const statuses = fc.constantFrom(...STAGE_STATUSES);
  /** The deploy run with these stage statuses, and facts to match (a started deploy). */
  const withStatuses = (list: StageStatus[], startedAt?: number): Run => {
    const run = deployRun();
    return { ...run, stages: run.stages.map((s, i) => ({ ...s, status: list[i]!, ...(startedAt !== undefined ? { startedAt } : {}) })) };
  };

  it("property: one status per stage whose status differs, the same each time, none for an unchanged run", () => {
    fc.assert(
      fc.property(fc.array(statuses, { minLength: 4, maxLength: 4 }), fc.array(statuses, { minLength: 4, maxLength: 4 }), fc.option(fc.nat()), (a, b, at) => {
        const before = withStatuses(a, at ?? undefined);
        const after = withStatuses(b, at ?? undefined);
        const reports = reportsBetween(before, after, URL);
        expect(reportsBetween(before, after, URL)).toEqual(reports);
        expect(reportsBetween(after, after, URL)).toEqual([]);
        const changed = b.map((s, i) => (s !== a[i] ? `hoist/main/${after.stages[i]!.name}` : undefined)).filter(Boolean);
        expect(reports.filter((r) => r.kind === "status").map((r) => r.context)).toEqual(changed);
        // A deployment only for a deploy stage that changed and had started.
        expect(reports.filter((r) => r.kind === "deployment").every((r) => r.context === "hoist/main/deploy" && at !== null)).toBe(true);
        expect(reports.every((r) => Array.from(r.description).length <= MAX_DESCRIPTION && !r.description.includes("\n"))).toBe(true);
      }),
    );
  });
});
