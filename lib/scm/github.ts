import type { Readable } from "node:stream";
import { Octokit, RequestError } from "octokit";
import { PermanentError } from "../errors.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import { fromWebBody, stripFirstComponent } from "../tar.ts";
import { DEFAULT_ARCHIVE_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, Deadline } from "./deadline.ts";
import { providerError } from "./errors.ts";
import type { ResolvedRef, SourceReader } from "./port.ts";
import { refTarget } from "./refs.ts";

export interface GitHubClientOptions {
  token: string;
  /** GitHub Enterprise Server's API, e.g. https://github.example.com/api/v3; default api.github.com. */
  baseUrl?: string;
}

/**
 * An Octokit for the readers. Its retry and throttling plugins are off: they wait up to
 * 1 + 4 + 9 s on a 5xx, and until the reset (up to an hour) on a rate limit, inside a
 * call that must answer within its deadline. The worker retries instead, with the wait
 * the error carries.
 */
export function githubClient(opts: GitHubClientOptions): Octokit {
  return new Octokit({
    auth: opts.token,
    ...(opts.baseUrl ? { baseUrl: opts.baseUrl.replace(/\/+$/, "") } : {}),
    retry: { enabled: false },
    throttle: { enabled: false },
  });
}

export interface ReaderTimeouts {
  /** Each API call, from request to the whole answer (an archive: to its first bytes). Default 30 s. */
  timeoutMs?: number;
  /** A whole archive download. Default 10 min. */
  archiveTimeoutMs?: number;
}

export function ownerAndRepo(repo: RepoRef): { owner: string; repo: string } {
  const [owner, name, ...rest] = repo.fullName.split("/");
  if (!owner || !name || rest.length) throw new PermanentError(`GitHub repository name must be owner/name, got ${repo.fullName}`);
  return { owner, repo: name };
}

/** The text of a contents-API answer, or undefined when the path is not a file. */
function fileText(data: unknown): string | undefined {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  // The JSON form: kept for servers that ignore the raw media type.
  if (data && typeof data === "object" && !Array.isArray(data)) {
    const { type, content, encoding } = data as { type?: unknown; content?: unknown; encoding?: unknown };
    if (type === "file" && typeof content === "string" && encoding === "base64") {
      return Buffer.from(content, "base64").toString("utf8");
    }
  }
  return undefined;
}

/** The sha of a commits-API answer: text in the sha media type, JSON from a server that ignores it. */
function commitSha(data: unknown): string | undefined {
  const text = typeof data === "string" ? data : data instanceof ArrayBuffer ? new TextDecoder().decode(data) : (data as { sha?: unknown } | null)?.sha;
  return typeof text === "string" && /^[0-9a-f]{40,64}$/.test(text.trim()) ? text.trim() : undefined;
}

/** Reads repositories through the GitHub REST API; every call has a deadline. */
export class GitHubReader implements SourceReader {
  private readonly timeoutMs: number;
  private readonly archiveTimeoutMs: number;

  constructor(
    private readonly octokit: Octokit,
    timeouts: ReaderTimeouts = {},
  ) {
    this.timeoutMs = timeouts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.archiveTimeoutMs = timeouts.archiveTimeoutMs ?? DEFAULT_ARCHIVE_TIMEOUT_MS;
  }

  async readFile(repo: RepoRef, sha: string, path: string): Promise<string | undefined> {
    const what = `reading ${path} of ${repo.fullName}@${sha}`;
    const deadline = new Deadline(this.timeoutMs, `GitHub did not answer ${what}`);
    try {
      // The raw media type returns the bytes themselves and works up to 100 MB; the
      // JSON form only carries base64 content for files under 1 MB.
      const res = await this.octokit.rest.repos.getContent({
        ...ownerAndRepo(repo),
        path: path.replace(/^\/+/, ""),
        ref: sha,
        mediaType: { format: "raw" },
        request: { signal: deadline.signal },
      });
      return fileText(res.data);
    } catch (err) {
      if (err instanceof RequestError && err.status === 404) return undefined;
      throw providerError("GitHub", deadline.error ?? err, what);
    } finally {
      deadline.clear();
    }
  }

  async resolveRef(repo: RepoRef, ref: string): Promise<ResolvedRef | undefined> {
    const target = refTarget(ref);
    if (!target) return undefined;
    const what = `resolving ${ref} in ${repo.fullName}`;
    const deadline = new Deadline(this.timeoutMs, `GitHub did not answer ${what}`);
    try {
      // https://docs.github.com/rest/commits/commits#get-a-commit: the sha media type answers
      // with the sha alone, not the commit's files and patches; heads/ and tags/ keep a branch
      // from being taken for a tag of the same name, and a tag is peeled to its commit.
      const res = await this.octokit.rest.repos.getCommit({
        ...ownerAndRepo(repo),
        ref: "sha" in target ? target.sha : "branch" in target ? `heads/${target.branch}` : `tags/${target.tag}`,
        mediaType: { format: "sha" },
        request: { signal: deadline.signal },
      });
      const sha = commitSha(res.data);
      if (sha === undefined) throw new PermanentError(`GitHub answered ${what} without a commit sha`);
      return { ...target, sha };
    } catch (err) {
      // 422 "No commit found for SHA", 409 "Git Repository is empty", 404 no such repository.
      if (err instanceof RequestError && [404, 409, 422].includes(err.status)) return undefined;
      throw providerError("GitHub", deadline.error ?? err, what);
    } finally {
      deadline.clear();
    }
  }

  async archive(repo: RepoRef, sha: string): Promise<Readable> {
    const what = `the tarball of ${repo.fullName}@${sha}`;
    // One deadline for the answer to start, a longer one for the whole download.
    const answer = new Deadline(this.timeoutMs, `GitHub did not start sending ${what}`);
    const whole = new Deadline(this.archiveTimeoutMs, `GitHub did not send all of ${what}`);
    try {
      // The API answers with a redirect to codeload, which fetch follows; the body is
      // streamed rather than buffered since repositories can be large.
      const res = await this.octokit.rest.repos.downloadTarballArchive({
        ...ownerAndRepo(repo),
        ref: sha,
        request: { parseSuccessResponseBody: false, signal: AbortSignal.any([answer.signal, whole.signal]) },
      });
      const out = stripFirstComponent(fromWebBody(res.data, `GitHub tarball of ${repo.fullName}@${sha}`));
      out.once("close", () => whole.clear());
      return out;
    } catch (err) {
      whole.clear();
      throw providerError("GitHub", answer.error ?? whole.error ?? err, `downloading ${what}`);
    } finally {
      answer.clear();
    }
  }
}
