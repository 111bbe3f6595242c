import { Commits, Deployments, type CommitablePipelineStatus } from "@gitbeaker/rest";
import * as z from "zod";
import { PermanentError } from "../errors.ts";
import { answerOf } from "./errors.ts";
import { DEFAULT_TIMEOUT_MS } from "./deadline.ts";
import { projectOf } from "./gitlab.ts";
import { singleAttemptRequester } from "./gitlab-requester.ts";
import { GITLAB_COMMIT_STATE, GITLAB_DEPLOYMENT_STATE, type DeploymentReport, type Report, type ReportSender, type StatusReport } from "./report-changes.ts";
import { reportError } from "./report-errors.ts";

export interface GitLabReportOptions {
  token: string;
  /** A self-managed instance, e.g. https://gitlab.example.com; default https://gitlab.com. */
  host?: string;
  /** Each API call, request to answer. Default 30 s. */
  timeoutMs?: number;
}

type CommitState = (typeof GITLAB_COMMIT_STATE)[keyof typeof GITLAB_COMMIT_STATE];

/** How many of an environment's newest deployments are searched for this run's. */
const RECENT = 20;
const Listed = z.array(z.object({ id: z.number(), sha: z.string(), status: z.string(), deployable: z.unknown().optional() }));

/**
 * Reports to GitLab through its REST API: a stage is a commit status (an external job in
 * the commit's pipeline), a deploy stage also a deployment of its environment. Calls go
 * through gitbeaker with its retries off (singleAttemptRequester), each bounded by
 * gitbeaker's `queryTimeout` (an AbortSignal per call), as the readers' are.
 */
export class GitLabReportSender implements ReportSender {
  private readonly commits: InstanceType<typeof Commits>;
  private readonly deployments: InstanceType<typeof Deployments>;

  constructor(opts: GitLabReportOptions) {
    const connection = {
      token: opts.token,
      ...(opts.host ? { host: opts.host.replace(/\/+$/, "") } : {}),
      queryTimeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      requesterFn: singleAttemptRequester,
    };
    this.commits = new Commits(connection);
    this.deployments = new Deployments(connection);
  }

  async send(report: Report): Promise<void> {
    if (report.kind === "status") await this.status(report, GITLAB_COMMIT_STATE[report.status]);
    else await this.deployment(report);
  }

  private async status(r: StatusReport, state: CommitState): Promise<void> {
    try {
      // gitbeaker's type predates `skipped`, which GitLab's API takes (lib/api/commit_statuses.rb).
      await this.commits.editStatus(projectOf(r.repo), r.sha, state as CommitablePipelineStatus, {
        name: r.context,
        targetUrl: r.url,
        description: r.description,
        ref: r.ref,
      });
    } catch (err) {
      // GitLab refuses to move a job to the state it is in ("Cannot transition status via :run
      // from :running", gitlab-org/gitlab#556757): a repeated or retried report, or a gate's
      // wait after pending (both pending). What it asked for shows already.
      if (badRequest(err, /^Cannot transition status/)) return;
      // Instances older than `skipped` refuse it: canceled is the nearest state they know.
      if (state === "skipped" && badRequest(err, /^state does not have a valid value/)) return this.status(r, "canceled");
      throw reportError("GitLab", err, `posting status ${r.context} on ${r.repo.fullName}@${r.sha}`);
    }
  }

  /**
   * GitLab's deployments carry no payload and its list has no sha filter, so this run's is
   * found among the environment's newest: the newest one of this sha that Hoist (not a CI
   * job) made. An environment takes one release at a time (its release lease), so a running
   * one of this sha is this run's; one already in the state asked is this report landed
   * before (its answer lost); any other is an earlier run's or attempt's, and a new one is made.
   */
  private async deployment(r: DeploymentReport): Promise<void> {
    const project = projectOf(r.repo);
    const target = GITLAB_DEPLOYMENT_STATE[r.state];
    const where = `${r.repo.fullName}@${r.sha} to ${r.environment}`;
    const recent = await this.call(`listing the deployments of ${where}`, () =>
      this.deployments.all(project, { environment: r.environment, orderBy: "id", sort: "desc", perPage: RECENT, maxPages: 1 }),
    );
    const listed = Listed.safeParse(recent);
    if (!listed.success) throw new PermanentError(`GitLab listed the deployments of ${r.repo.fullName} in a shape Hoist does not know: ${listed.error.message}`);
    const ours = listed.data.find((d) => d.sha === r.sha && !d.deployable);
    if (ours?.status === target) return;
    if (ours && ["created", "running", "blocked"].includes(ours.status)) {
      await this.call(`marking deployment ${ours.id} of ${where} ${target}`, () => this.deployments.edit(project, ours.id, target));
      return;
    }
    await this.call(`creating a deployment of ${where}`, () => this.deployments.create(project, r.environment, r.sha, r.ref, r.tag, { status: target }));
  }

  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw reportError("GitLab", err, what);
    }
  }
}

function badRequest(err: unknown, message: RegExp): boolean {
  return answerOf(err).status === 400 && err instanceof Error && message.test(err.message);
}
