import { transition, type RunEvent } from "../../lib/pipeline/machine.ts";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import type { Run, StageSpec } from "../../lib/pipeline/run.ts";
import { makeRun } from "./runs.ts";

/** Runs as the worker records them, step by step through the pipeline core, for the reporting tests. */

export const SHA = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d";
export const GITHUB_REPO: RepoRef = { provider: "github", fullName: "octo-org/app", id: 1, cloneUrl: "https://github.com/octo-org/app.git" };
export const GITLAB_REPO: RepoRef = { provider: "gitlab", fullName: "mike/diaspora", id: 15, cloneUrl: "https://gitlab.example.com/mike/diaspora.git" };

const SPECS: StageSpec[] = [
  { kind: "build", image: "app", context: ".", dockerfile: "Dockerfile", args: {} },
  { kind: "test", run: "npm test", timeoutSec: 60, env: {} },
  { kind: "push", target: "127.0.0.1:5000/app" },
  { kind: "deploy", environment: "staging", compose: "docker-compose.yml" },
];

/** A new run of build → test → push → deploy to staging, as the webhook makes it. */
export function deployRun(repo: RepoRef = GITHUB_REPO, id = "r1"): Run {
  const run = makeRun(SPECS, { id, repo, sha: SHA });
  return { ...run, stages: run.stages.map((s) => ({ ...s, name: s.spec.kind })) };
}

export const DEPLOY = 3;

export const started = (stage: number, at: number): RunEvent => ({ type: "stageStarted", stage, at, job: `job-${stage}` });
export const finished = (stage: number, at: number, error?: string): RunEvent => ({ type: "stageFinished", stage, at, ok: error === undefined, ...(error ? { error } : {}) });
/** The deploy stage's gate opens asking one approval, which parks the stage waiting. */
export const gateOpened = (at: number): RunEvent => ({
  type: "gateOpened",
  stage: DEPLOY,
  at,
  rule: { approvers: [], count: 1, expiresAt: at + 3_600_000, selfApproval: true, from: [".hoist.yml"] },
});
export const decided = (at: number, approve = true): RunEvent => ({ type: "decided", stage: DEPLOY, by: "alice", identities: ["alice"], via: "api", at, approve });
export const stop = (at: number, status: "cancelled" | "failed", reason: string): RunEvent => ({ type: "stop", at, status, reason });

/** Each run the events lead to, the first one included: the states a reporter is shown one after the other. */
export function steps(first: Run, events: RunEvent[]): Run[] {
  const runs = [first];
  for (const event of events) runs.push(transition(runs.at(-1)!, event).run);
  return runs;
}

/** A whole successful life: queued, each stage running then succeeded, the deploy waiting at its gate first. */
export function successfulLife(repo: RepoRef = GITHUB_REPO, id = "r1"): Run[] {
  return steps(deployRun(repo, id), [
    started(0, 2000),
    finished(0, 2400),
    started(1, 2500),
    finished(1, 3200),
    started(2, 3300),
    finished(2, 3400),
    gateOpened(3500),
    decided(9000),
    started(DEPLOY, 9100),
    finished(DEPLOY, 12300),
  ]);
}
