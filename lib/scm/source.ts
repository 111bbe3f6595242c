import type { Readable } from "node:stream";
import { PermanentError } from "../errors.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import { GitHubReader, githubClient, type ReaderTimeouts } from "./github.ts";
import { GitLabReader } from "./gitlab.ts";
import { LocalGitReader, localRepoPath } from "./local.ts";
import type { ResolvedRef, SourceReader } from "./port.ts";

export interface SourceReaders {
  /** Defaults to a LocalGitReader that refuses, naming HOIST_ALLOW_LOCAL_REPOS. */
  local?: SourceReader;
  github?: SourceReader;
  gitlab?: SourceReader;
}

const MISSING = {
  github: "no GitHub access is configured: set GITHUB_TOKEN to read GitHub repositories",
  gitlab: "no GitLab access is configured: set GITLAB_TOKEN (and GITLAB_URL for a self-managed instance) to read GitLab repositories",
} as const;

/** Sends each repository to the reader that can reach it. */
export class SourceRouter implements SourceReader {
  private readonly local: SourceReader;

  constructor(private readonly readers: SourceReaders) {
    this.local = readers.local ?? new LocalGitReader({ allowLocalRepos: false });
  }

  async readFile(repo: RepoRef, sha: string, path: string): Promise<string | undefined> {
    return this.readerFor(repo).readFile(repo, sha, path);
  }

  async archive(repo: RepoRef, sha: string): Promise<Readable> {
    return this.readerFor(repo).archive(repo, sha);
  }

  async resolveRef(repo: RepoRef, ref: string): Promise<ResolvedRef | undefined> {
    return this.readerFor(repo).resolveRef(repo, ref);
  }

  private readerFor(repo: RepoRef): SourceReader {
    // The clone URL wins over the provider: a local demo repository still arrives as
    // a "github" or "gitlab" push, but must never be fetched over the network.
    if (localRepoPath(repo.cloneUrl) !== undefined) return this.local;
    const reader = this.readers[repo.provider];
    if (!reader) throw new PermanentError(MISSING[repo.provider]);
    return reader;
  }
}

export interface SourceConfig extends ReaderTimeouts {
  githubToken?: string;
  /** GitHub Enterprise Server's API base URL (GITHUB_API_URL); default https://api.github.com. */
  githubApiUrl?: string;
  gitlabToken?: string;
  /** GitLab base URL; gitbeaker defaults to https://gitlab.com. */
  gitlabUrl?: string;
  allowLocalRepos?: boolean;
}

/** A router with a reader for each provider that has credentials. */
export function createSourceRouter(config: SourceConfig): SourceRouter {
  const timeouts: ReaderTimeouts = {
    ...(config.timeoutMs !== undefined ? { timeoutMs: config.timeoutMs } : {}),
    ...(config.archiveTimeoutMs !== undefined ? { archiveTimeoutMs: config.archiveTimeoutMs } : {}),
  };
  return new SourceRouter({
    local: new LocalGitReader({ allowLocalRepos: config.allowLocalRepos ?? false }),
    ...(config.githubToken
      ? {
          github: new GitHubReader(
            githubClient({ token: config.githubToken, ...(config.githubApiUrl ? { baseUrl: config.githubApiUrl } : {}) }),
            timeouts,
          ),
        }
      : {}),
    ...(config.gitlabToken
      ? { gitlab: new GitLabReader({ token: config.gitlabToken, ...(config.gitlabUrl ? { host: config.gitlabUrl } : {}), ...timeouts }) }
      : {}),
  });
}
