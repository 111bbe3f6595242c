import type { Readable } from "node:stream";
import { GitbeakerRequestError, Repositories, RepositoryFiles } from "@gitbeaker/rest";
import { RetryableError } from "../errors.ts";
import type { RepoRef } from "../pipeline/run.ts";
import { fromWebBody, stripFirstComponent } from "../tar.ts";
import { DEFAULT_ARCHIVE_TIMEOUT_MS, DEFAULT_TIMEOUT_MS } from "./deadline.ts";
import { providerError } from "./errors.ts";
import type { ReaderTimeouts } from "./github.ts";
import type { SourceReader } from "./port.ts";

export interface GitLabReaderOptions extends ReaderTimeouts {
  token: string;
  /** A self-managed instance, e.g. https://gitlab.example.com; default https://gitlab.com. */
  host?: string;
}

/** GitLab accepts the numeric project id or the URL-encoded path; the id survives renames. */
function projectOf(repo: RepoRef): string | number {
  return repo.id ?? repo.fullName;
}

/**
 * Reads repositories through the GitLab REST API; every call has a deadline. gitbeaker
 * bounds each call by its `queryTimeout` (default 300 s), which also runs while a streamed
 * body is read: file reads get the short one, archives the long one, and the wait for an
 * archive's answer to start is raced against the short one.
 */
export class GitLabReader implements SourceReader {
  private readonly files: InstanceType<typeof RepositoryFiles>;
  private readonly repositories: InstanceType<typeof Repositories>;
  private readonly timeoutMs: number;

  constructor(opts: GitLabReaderOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const connection = { token: opts.token, ...(opts.host ? { host: opts.host.replace(/\/+$/, "") } : {}) };
    this.files = new RepositoryFiles({ ...connection, queryTimeout: this.timeoutMs });
    this.repositories = new Repositories({ ...connection, queryTimeout: opts.archiveTimeoutMs ?? DEFAULT_ARCHIVE_TIMEOUT_MS });
  }

  async readFile(repo: RepoRef, sha: string, path: string): Promise<string | undefined> {
    try {
      const raw = await this.files.showRaw(projectOf(repo), path.replace(/^\/+/, ""), sha);
      return typeof raw === "string" ? raw : await raw.text();
    } catch (err) {
      if (err instanceof GitbeakerRequestError && err.cause?.response.status === 404) return undefined;
      throw providerError("GitLab", err, `reading ${path} of ${repo.fullName}@${sha}`);
    }
  }

  async archive(repo: RepoRef, sha: string): Promise<Readable> {
    const what = `the archive of ${repo.fullName}@${sha}`;
    const answer = this.repositories.showArchive(projectOf(repo), { sha, fileType: "tar.gz", asStream: true });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RetryableError(`GitLab did not start sending ${what} within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
    });
    try {
      const body = await Promise.race([answer, late]);
      return stripFirstComponent(fromWebBody(body, `GitLab archive of ${repo.fullName}@${sha}`));
    } catch (err) {
      // An answer that comes after the deadline is not read: let its connection go.
      answer.then((body) => (body as { cancel?: () => Promise<void> }).cancel?.().catch(() => undefined), () => undefined);
      throw providerError("GitLab", err, `downloading ${what}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
