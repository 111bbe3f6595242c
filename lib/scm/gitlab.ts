import type { Readable } from "node:stream";
import { Branches, Commits, GitbeakerRequestError, Repositories, RepositoryFiles, Tags } from "@gitbeaker/rest";
import * as z from "zod";
import { RetryableError } from "../errors.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import { fromWebBody, stripFirstComponent } from "../tar.ts";
import { DEFAULT_ARCHIVE_TIMEOUT_MS, DEFAULT_TIMEOUT_MS } from "./deadline.ts";
import { providerError } from "./errors.ts";
import type { ReaderTimeouts } from "./github.ts";
import type { ResolvedRef, SourceReader } from "./port.ts";
import { refTarget } from "./refs.ts";

export interface GitLabReaderOptions extends ReaderTimeouts {
  token: string;
  /** A self-managed instance, e.g. https://gitlab.example.com; default https://gitlab.com. */
  host?: string;
}

/** GitLab accepts the numeric project id or the URL-encoded path; the id survives renames. */
export function projectOf(repo: RepoRef): string | number {
  return repo.id ?? repo.fullName;
}

/** The part of GitLab's commit, branch and tag answers a ref's resolution reads. */
const CommitId = z.object({ id: z.string().regex(/^[0-9a-f]{40,64}$/) });
const WithCommit = z.object({ commit: CommitId });

/**
 * Reads repositories through the GitLab REST API; every call has a deadline. gitbeaker
 * bounds each call by its `queryTimeout` (default 300 s), which also runs while a streamed
 * body is read: file reads get the short one, archives the long one, and the wait for an
 * archive's answer to start is raced against the short one.
 */
export class GitLabReader implements SourceReader {
  private readonly files: InstanceType<typeof RepositoryFiles>;
  private readonly repositories: InstanceType<typeof Repositories>;
  private readonly commits: InstanceType<typeof Commits>;
  private readonly branches: InstanceType<typeof Branches>;
  private readonly tags: InstanceType<typeof Tags>;
  private readonly timeoutMs: number;

  constructor(opts: GitLabReaderOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const connection = { token: opts.token, ...(opts.host ? { host: opts.host.replace(/\/+$/, "") } : {}) };
    this.files = new RepositoryFiles({ ...connection, queryTimeout: this.timeoutMs });
    this.repositories = new Repositories({ ...connection, queryTimeout: opts.archiveTimeoutMs ?? DEFAULT_ARCHIVE_TIMEOUT_MS });
    this.commits = new Commits({ ...connection, queryTimeout: this.timeoutMs });
    this.branches = new Branches({ ...connection, queryTimeout: this.timeoutMs });
    this.tags = new Tags({ ...connection, queryTimeout: this.timeoutMs });
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

  async resolveRef(repo: RepoRef, ref: string): Promise<ResolvedRef | undefined> {
    const target = refTarget(ref);
    if (!target) return undefined;
    const project = projectOf(repo);
    try {
      // A branch or a tag by its own endpoint, so neither is taken for the other; a tag's answer
      // carries the commit it points at, an annotated one's too.
      const sha =
        "sha" in target ? CommitId.parse(await this.commits.show(project, target.sha)).id
        : "branch" in target ? WithCommit.parse(await this.branches.show(project, target.branch)).commit.id
        : WithCommit.parse(await this.tags.show(project, target.tag)).commit.id;
      return { ...target, sha };
    } catch (err) {
      // "404 Commit Not Found", "404 Branch Not Found", "404 Tag Not Found", "404 Project Not Found".
      if (err instanceof GitbeakerRequestError && err.cause?.response.status === 404) return undefined;
      throw providerError("GitLab", err, `resolving ${ref} in ${repo.fullName}`);
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
