import { classify, type HoistError, messageOf, RetryableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Provider } from "../pipeline/refs.ts";
import type { Run } from "../pipeline/run.ts";
import { DEFAULT_TIMEOUT_MS } from "./deadline.ts";
import { githubClient } from "./github.ts";
import { GitHubReportSender } from "./github-report.ts";
import { GitLabReportSender } from "./gitlab-report.ts";
import { localRepoPath } from "./local.ts";
import { reportsBetween, type Report, type ReportSender } from "./report-changes.ts";

/** Tells GitHub and GitLab how each run goes: commit statuses and deployments. */
export interface RunReporter {
  /**
   * Reports what changed from `before` (undefined: the run is seen for the first time) to
   * `after`. Returns at once and never throws: the reports are sent in the background, and a
   * provider that fails is retried, then logged, never the caller's concern.
   */
  report(before: Run | undefined, after: Run): void;
  /** Settles once every report accepted so far has been sent or given up: for tests, and for a Lambda handler before it returns. */
  flush(): Promise<void>;
}

export interface RetryPolicy {
  /** Tries per report, the first included. */
  attempts: number;
  /** The wait after the first failure; it doubles after each next one, half of it random (jitter). */
  baseMs: number;
  /** The longest wait between tries. A provider that asks for longer (a rate limit's reset) has the report dropped: trying sooner cannot land it. */
  maxWaitMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 1000, maxWaitMs: 60_000 };

export interface ReporterOptions {
  /** One per provider Hoist may write to; a run of another provider is not reported. */
  senders: Partial<Record<Provider, ReportSender>>;
  /** The run's page, the link each status and deployment carries. */
  runUrl: (run: Run) => string;
  log: Logger;
  retry?: Partial<RetryPolicy>;
  /** Reports waiting or being sent; past it the oldest waiting one is dropped. Default 1000. */
  maxPending?: number;
  /** Reports sent at the same time. Default 4. */
  concurrency?: number;
}

interface Job {
  /** One run's one status or deployment: its reports go out one at a time, in order. */
  key: string;
  report: Report;
  sender: ReportSender;
  log: Logger;
  /** A newer report with the same key came: this one is not tried again. */
  superseded: boolean;
  /** Ends the wait before the next try at once. */
  wake?: () => void;
}

/**
 * The reporter: reports are queued per run and status, so a "success" is never overtaken by
 * an older "pending" still being retried (a newer report supersedes a waiting older one,
 * and stops one that is being retried at its next wait); at most `concurrency` are sent at
 * once and `maxPending` held, the oldest dropped past that. Each is tried up to `attempts`
 * times while its failure is retryable (an outage, a timeout, a rate limit), with exponential
 * backoff and jitter, or the wait the provider asks for. Only error messages are logged:
 * a client's error object can hold the request and its token.
 */
export class QueuedReporter implements RunReporter {
  private readonly waiting: Job[] = [];
  private readonly sending = new Map<string, Job>();
  private readonly idle: Array<() => void> = [];
  private readonly retry: RetryPolicy;
  private readonly maxPending: number;
  private readonly concurrency: number;

  constructor(private readonly options: ReporterOptions) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.maxPending = Math.max(this.concurrency + 1, options.maxPending ?? 1000);
  }

  report(before: Run | undefined, after: Run): void {
    try {
      const sender = this.senderFor(after);
      if (!sender) return;
      const reports = reportsBetween(before, after, this.options.runUrl(after));
      for (const report of reports) this.enqueue(report, sender);
      // Sent from the next turn of the event loop: the caller goes on with its own work first.
      if (reports.length > 0) setImmediate(() => this.pump());
    } catch (err) {
      this.options.log.error({ run: after?.id, error: messageOf(err) }, "could not report the run's progress");
    }
  }

  flush(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private senderFor(run: Run): ReportSender | undefined {
    // A local repository (HOIST_ALLOW_LOCAL_REPOS) arrives as a "github" or "gitlab" push, but
    // has no provider to report to.
    if (localRepoPath(run.repo.cloneUrl) !== undefined) return undefined;
    return this.options.senders[run.repo.provider];
  }

  private enqueue(report: Report, sender: ReportSender): void {
    const key = `${report.runId}\n${report.kind}\n${report.context}`;
    const log = this.options.log.child({ run: report.runId, provider: report.repo.provider, repo: report.repo.fullName, report: report.kind, context: report.context });
    // Only the latest state of a status or deployment matters: an older one not yet sent is
    // dropped, and one being retried stops at its next wait.
    const older = this.waiting.findIndex((j) => j.key === key);
    if (older >= 0) this.waiting.splice(older, 1);
    const current = this.sending.get(key);
    if (current) {
      current.superseded = true;
      current.wake?.();
    }
    this.waiting.push({ key, report, sender, log, superseded: false });
    if (this.waiting.length + this.sending.size > this.maxPending) {
      const dropped = this.waiting.shift();
      dropped?.log.warn({ held: this.maxPending }, "too many reports to send: the oldest waiting one is dropped");
    }
  }

  private pump(): void {
    for (let i = 0; i < this.waiting.length && this.sending.size < this.concurrency; ) {
      const job = this.waiting[i]!;
      if (this.sending.has(job.key)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.sending.set(job.key, job);
      void this.send(job).finally(() => {
        this.sending.delete(job.key);
        this.pump();
        this.settle();
      });
    }
    this.settle();
  }

  /** Tries a report until it lands, cannot land, or is superseded; never rejects. */
  private async send(job: Job): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const failure = await tryOnce(job);
      if (!failure) return void job.log.debug({ attempt }, "reported");
      const error = failure.message;
      if (!failure.retryable) return void job.log.warn({ attempt, error }, "report refused; not tried again");
      if (job.superseded) return void job.log.debug({ attempt, error }, "report failed and a newer one replaces it");
      if (attempt >= this.retry.attempts) return void job.log.warn({ attempt, error }, `report given up after ${attempt} tries`);
      const asked = failure instanceof RetryableError ? failure.retryAfterMs : undefined;
      if (asked !== undefined && asked > this.retry.maxWaitMs)
        return void job.log.warn({ attempt, error, retryAfterMs: asked }, "report dropped: the provider asks to wait longer than the reporter waits");
      const backoff = Math.min(this.retry.maxWaitMs, this.retry.baseMs * 2 ** (attempt - 1));
      await this.pause(job, Math.max(asked ?? 0, backoff / 2 + (Math.random() * backoff) / 2));
      if (job.superseded) return void job.log.debug({ attempt, error }, "report failed and a newer one replaces it");
    }
  }

  private pause(job: Job, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        delete job.wake;
        resolve();
      };
      // Not unref'd, unlike a Deadline's timer: nothing else holds a retry alive, and a Lambda
      // handler awaiting flush() must see it through.
      const timer = setTimeout(done, ms);
      job.wake = done;
    });
  }

  private isIdle(): boolean {
    return this.waiting.length === 0 && this.sending.size === 0;
  }

  private settle(): void {
    if (this.isIdle()) for (const resolve of this.idle.splice(0)) resolve();
  }
}

/** One try of a job's report: what it failed with, classified, or undefined when it landed. */
async function tryOnce(job: Job): Promise<HoistError | undefined> {
  try {
    await job.sender.send(job.report);
    return undefined;
  } catch (err) {
    return classify(err);
  }
}

export interface ProviderAccess {
  token: string;
  /** GITHUB_API_URL (GitHub Enterprise Server's API) or GITLAB_URL (a self-managed instance); default the public service. */
  baseUrl?: string;
}

export interface RunReporterConfig {
  github?: ProviderAccess;
  gitlab?: ProviderAccess;
  runUrl: (run: Run) => string;
  log: Logger;
  /** Each provider call, request to answer. Default 30 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Reports sent at the same time. Default 4. */
  concurrency?: number;
}

/** A reporter that writes to each provider it has a token for, with the readers' client configuration. */
export function createRunReporter(config: RunReporterConfig): RunReporter {
  const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const senders: Partial<Record<Provider, ReportSender>> = {};
  const { github, gitlab } = config;
  if (github?.token) senders.github = new GitHubReportSender(githubClient({ token: github.token, ...(github.baseUrl ? { baseUrl: github.baseUrl } : {}) }), timeoutMs);
  if (gitlab?.token) senders.gitlab = new GitLabReportSender({ token: gitlab.token, ...(gitlab.baseUrl ? { host: gitlab.baseUrl } : {}), timeoutMs });
  const { runUrl, log, retry, concurrency } = config;
  return new QueuedReporter({ senders, runUrl, log, ...(retry ? { retry } : {}), ...(concurrency !== undefined ? { concurrency } : {}) });
}
