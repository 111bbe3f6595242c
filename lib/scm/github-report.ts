import type { Octokit } from "octokit";
import * as z from "zod";
import { PermanentError } from "../errors.ts";
import { DEFAULT_TIMEOUT_MS, Deadline } from "./deadline.ts";
import { ownerAndRepo } from "./github.ts";
import { GITHUB_COMMIT_STATE, GITHUB_DEPLOYMENT_STATE, type DeploymentReport, type ReportSender, type Report, type StatusReport } from "./report-changes.ts";
import { reportError } from "./report-errors.ts";

/** The deployments' task: GitHub's default, and the filter that finds Hoist's. */
const TASK = "deploy";

/** What Hoist writes in a deployment's payload, and finds it again by. */
const Payload = z.object({ run: z.string(), stage: z.string(), attempt: z.number() });
const Listed = z.array(z.object({ id: z.number(), payload: z.unknown() }));

/**
 * Reports to GitHub through its REST API, with the readers' Octokit (githubClient: its retry
 * and throttling plugins off, the reporter retries). A stage is a commit status, not a check
 * run: check runs can only be written by a GitHub App, statuses by any token that may write
 * them. A deploy stage is also a deployment, found again by its payload so that a retried or
 * repeated report never makes a second one. Every call has a deadline.
 */
export class GitHubReportSender implements ReportSender {
  constructor(
    private readonly octokit: Octokit,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {}

  async send(report: Report): Promise<void> {
    if (report.kind === "status") await this.status(report);
    else await this.deployment(report);
  }

  private async status(r: StatusReport): Promise<void> {
    await this.call(`posting status ${r.context} on ${r.repo.fullName}@${r.sha}`, (signal) =>
      this.octokit.rest.repos.createCommitStatus({
        ...ownerAndRepo(r.repo),
        sha: r.sha,
        state: GITHUB_COMMIT_STATE[r.status],
        context: r.context,
        description: r.description,
        target_url: r.url,
        request: { signal },
      }),
    );
  }

  private async deployment(r: DeploymentReport): Promise<void> {
    const id = (await this.find(r)) ?? (await this.create(r));
    await this.call(`posting the status of deployment ${id} (${r.environment}) of ${r.repo.fullName}`, (signal) =>
      this.octokit.rest.repos.createDeploymentStatus({
        ...ownerAndRepo(r.repo),
        deployment_id: id,
        state: GITHUB_DEPLOYMENT_STATE[r.state],
        description: r.description,
        log_url: r.url,
        request: { signal },
      }),
    );
  }

  /** The deployment this run's attempt made of the stage, if one was made (its answer may have been lost). */
  private async find(r: DeploymentReport): Promise<number | undefined> {
    const res = await this.call(`listing the deployments of ${r.repo.fullName}@${r.sha} to ${r.environment}`, (signal) =>
      this.octokit.rest.repos.listDeployments({ ...ownerAndRepo(r.repo), sha: r.sha, environment: r.environment, task: TASK, per_page: 100, request: { signal } }),
    );
    const listed = Listed.safeParse(res.data);
    if (!listed.success) throw new PermanentError(`GitHub listed the deployments of ${r.repo.fullName} in a shape Hoist does not know: ${listed.error.message}`);
    return listed.data.find((d) => {
      const payload = Payload.safeParse(d.payload);
      return payload.success && payload.data.run === r.runId && payload.data.stage === r.stage && payload.data.attempt === r.attempt;
    })?.id;
  }

  private async create(r: DeploymentReport): Promise<number> {
    const where = `${r.repo.fullName}@${r.sha} to ${r.environment}`;
    const res = await this.call(`creating a deployment of ${where}`, (signal) =>
      this.octokit.rest.repos.createDeployment({
        ...ownerAndRepo(r.repo),
        // The sha, not the branch: the commit the run built, whatever the branch points at now.
        ref: r.sha,
        environment: r.environment,
        task: TASK,
        // Nothing to merge into a sha, and no status checks to wait for: Hoist's own are still pending.
        auto_merge: false,
        required_contexts: [],
        payload: { run: r.runId, stage: r.stage, attempt: r.attempt } satisfies z.infer<typeof Payload>,
        description: r.description,
        request: { signal },
      }),
    );
    // 202 is GitHub merging the default branch in instead, which auto_merge: false rules out.
    if (!("id" in res.data)) throw new PermanentError(`GitHub answered ${res.status} and made no deployment of ${where}: ${res.data.message ?? "no message"}`);
    return res.data.id;
  }

  private async call<T>(what: string, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = new Deadline(this.timeoutMs, `GitHub did not answer ${what}`);
    try {
      return await request(deadline.signal);
    } catch (err) {
      throw reportError("GitHub", deadline.error ?? err, what);
    } finally {
      deadline.clear();
    }
  }
}
