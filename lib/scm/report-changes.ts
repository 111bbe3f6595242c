import { formatDuration } from "../duration.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import type { Run, Stage } from "../pipeline/run.ts";
import type { StageStatus } from "../pipeline/statuses.ts";

/**
 * What Hoist tells GitHub and GitLab about a run, decided here and nowhere else: the adapters
 * (github-report.ts, gitlab-report.ts) only send what this module says, through the state
 * tables below. Pure: the same (before, after) always gives the same reports, and a stage
 * whose status did not change gives none, so a duplicated or retried change reports nothing
 * new and the providers end up showing the latest state whatever was retried.
 */

/** The longest description GitHub takes, for commit and deployment statuses alike (GitLab takes 255). */
export const MAX_DESCRIPTION = 140;

/** Where a deploy stage's release stands, as a provider's deployment shows it. */
export type DeploymentState = "running" | "succeeded" | "failed" | "cancelled";

interface ReportFields {
  runId: string;
  /** The run's attempt (1, then one more for each re-run): a re-run's release is a new deployment. */
  attempt: number;
  repo: RepoRef;
  sha: string;
  /** The branch or tag name: GitLab files statuses under it and needs it for a deployment. */
  ref: string;
  tag: boolean;
  /** `hoist/<pipeline>/<stage>`: one status per stage, which each report updates in place. */
  context: string;
  stage: string;
  /** At most MAX_DESCRIPTION characters, on one line. */
  description: string;
  /** The run's page: a status's target_url, a deployment's log_url. */
  url: string;
}

export interface StatusReport extends ReportFields {
  kind: "status";
  status: StageStatus;
}

export interface DeploymentReport extends ReportFields {
  kind: "deployment";
  environment: string;
  state: DeploymentState;
}

export type Report = StatusReport | DeploymentReport;

/** A provider's way of publishing one report; throws a HoistError that says whether trying again can help. */
export interface ReportSender {
  send(report: Report): Promise<void>;
}

type GitHubCommitState = "error" | "failure" | "pending" | "success";

/**
 * GitHub's commit status states (https://docs.github.com/rest/commits/statuses) have no
 * neutral or skipped one. A skipped stage is reported as `success` ("skipped"): left pending,
 * its status would show the commit as in progress for ever, and as `failure` it would count
 * the one failure that caused it a second time; GitHub's own checks treat a skipped check as
 * passing for branch protection too. A cancel is `failure` ("cancelled"), not `error`, which
 * says the CI itself broke.
 */
export const GITHUB_COMMIT_STATE = {
  pending: "pending",
  waiting: "pending",
  running: "pending",
  succeeded: "success",
  failed: "failure",
  cancelled: "failure",
  skipped: "success",
} as const satisfies Record<StageStatus, GitHubCommitState>;

type GitLabCommitState = "pending" | "running" | "success" | "failed" | "canceled" | "skipped";

/** GitLab's commit status states (POST /projects/:id/statuses/:sha); a gate's wait is pending, said in the description. */
export const GITLAB_COMMIT_STATE = {
  pending: "pending",
  waiting: "pending",
  running: "running",
  succeeded: "success",
  failed: "failed",
  cancelled: "canceled",
  skipped: "skipped",
} as const satisfies Record<StageStatus, GitLabCommitState>;

type GitHubDeploymentState = "error" | "failure" | "inactive" | "in_progress" | "queued" | "pending" | "success";

/**
 * GitHub's deployment states. A cancelled release is undone (the worker's stopStage), so the
 * environment does not run it: `inactive` says so without calling it a failure, which `error`
 * and `failure` would.
 */
export const GITHUB_DEPLOYMENT_STATE = {
  running: "in_progress",
  succeeded: "success",
  failed: "failure",
  cancelled: "inactive",
} as const satisfies Record<DeploymentState, GitHubDeploymentState>;

/** GitLab's deployment statuses an API client may set (POST and PUT /projects/:id/deployments). */
export const GITLAB_DEPLOYMENT_STATE = {
  running: "running",
  succeeded: "success",
  failed: "failed",
  cancelled: "canceled",
} as const satisfies Record<DeploymentState, "running" | "success" | "failed" | "canceled">;

/**
 * The reports a change of a run from `before` to `after` calls for: one commit status for each
 * stage whose status changed (every stage, the first time a run is seen), and for a deploy
 * stage whose release started, its deployment's state. A run without stages (its pipeline
 * could not be used) has one status of its own, `hoist/<pipeline>`.
 */
export function reportsBetween(before: Run | undefined, after: Run, runUrl: string): Report[] {
  const reports: Report[] = [];
  if (after.stages.length === 0) {
    if (before?.status !== after.status) {
      const status: StageStatus = after.status === "queued" ? "pending" : after.status;
      const description = status === "failed" || status === "cancelled" ? (after.error ?? status) : status;
      reports.push({ kind: "status", ...fields(after, `hoist/${after.pipeline}`, after.pipeline, description, runUrl), status });
    }
    return reports;
  }
  after.stages.forEach((stage, i) => {
    if (before?.stages[i]?.status === stage.status) return;
    const context = `hoist/${after.pipeline}/${stage.name}`;
    reports.push({ kind: "status", ...fields(after, context, stage.name, describe(after, stage), runUrl), status: stage.status });
    const state = deploymentState(stage);
    if (stage.spec.kind === "deploy" && state) {
      const environment = stage.spec.environment;
      const description = state === "running" ? `releasing to ${environment}` : describe(after, stage);
      reports.push({ kind: "deployment", ...fields(after, context, stage.name, description, runUrl), environment, state });
    }
  });
  return reports;
}

/** A deploy stage has a deployment once its release started: one waiting at its gate, or stopped before, has none. */
function deploymentState(stage: Stage): DeploymentState | undefined {
  if (stage.startedAt === undefined) return undefined;
  const states: Partial<Record<StageStatus, DeploymentState>> = { running: "running", succeeded: "succeeded", failed: "failed", cancelled: "cancelled" };
  return states[stage.status];
}

function fields(run: Run, context: string, stage: string, description: string, url: string): ReportFields {
  return {
    runId: run.id,
    attempt: (run.attempts?.length ?? 0) + 1,
    repo: run.repo,
    sha: run.sha,
    ref: run.branch ?? run.tag ?? run.ref.replace(/^refs\/(heads|tags)\//, ""),
    tag: run.tag !== undefined,
    context,
    stage,
    description: oneLine(description),
    url,
  };
}

const DESCRIBE: Record<StageStatus, (run: Run, stage: Stage) => string> = {
  pending: () => "queued",
  waiting: () => "waiting for approval",
  running: () => "running",
  succeeded: (_run, s) => (s.startedAt !== undefined && s.finishedAt !== undefined ? `succeeded in ${formatDuration(s.finishedAt - s.startedAt)}` : "succeeded"),
  // A stop that failed the run (an unusable config) leaves the stage without an error of its own.
  failed: (run, s) => s.error ?? run.stopped?.reason ?? "failed",
  cancelled: (run) => run.stopped?.reason ?? "cancelled",
  skipped: (run) => {
    const failed = run.stages.find((s) => s.status === "failed");
    return run.status === "cancelled" ? "skipped: the run was cancelled" : failed ? `skipped: ${failed.name} failed` : "skipped";
  },
};

function describe(run: Run, stage: Stage): string {
  return DESCRIBE[stage.status](run, stage);
}

/** One line of at most MAX_DESCRIPTION characters (code points, as GitHub counts them). */
function oneLine(text: string): string {
  const chars = Array.from(text.replace(/\s+/g, " ").trim());
  return chars.length <= MAX_DESCRIPTION ? chars.join("") : `${chars.slice(0, MAX_DESCRIPTION - 1).join("")}…`;
}
