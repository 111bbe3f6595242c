import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { classify, NotFoundError, PermanentError, RetryableError } from "../../lib/errors.ts";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import { GitHubReader, githubClient } from "../../lib/scm/github.ts";
import { GitLabReader } from "../../lib/scm/gitlab.ts";
import { createSourceRouter } from "../../lib/scm/source.ts";
import { tarFiles } from "../support/tar.ts";

/**
 * The readers against a local server standing in for the provider's API: one that fails,
 * one that never answers, one that answers late but within the deadline. Each test sets
 * `handle`; the server records every request it was asked.
 */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let base: string;
let handle: Handler;
const asked: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    asked.push(`${req.method} ${req.url}`);
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  // Requests left hanging on purpose must not hold the server open.
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  asked.length = 0;
});

const SHA = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d";
const HOIST_YML = "pipelines: {}\n";
const github: RepoRef = { provider: "github", fullName: "octo-org/app", id: 1, cloneUrl: "https://github.com/octo-org/app.git" };
const gitlab: RepoRef = { provider: "gitlab", fullName: "mike/diaspora", id: 15, cloneUrl: "http://example.com/mike/diaspora.git" };

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
};
const never: Handler = () => undefined;
const after = (ms: number, then: Handler): Handler => (req, res) => {
  setTimeout(() => then(req, res), ms);
};
const rawFile: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
  res.end(HOIST_YML);
};

async function archiveBytes(): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: "top/", type: "directory" });
  pack.entry({ name: "top/.hoist.yml" }, HOIST_YML);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return gzipSync(Buffer.concat(chunks));
}
const archiveOf = (bytes: Buffer): Handler => (_req, res) => {
  res.writeHead(200, { "content-type": "application/x-gzip", "content-length": String(bytes.length) });
  res.end(bytes);
};

/** The rejection of `promise`, and how long it took. */
async function failure(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error("expected a failure");
}

const GitHub = (timeouts = { timeoutMs: 400, archiveTimeoutMs: 800 }) =>
  new GitHubReader(githubClient({ token: "ghp_test", baseUrl: base }), timeouts);
const GitLab = (timeouts = { timeoutMs: 400, archiveTimeoutMs: 800 }) => new GitLabReader({ host: base, token: "glpat-test", ...timeouts });

describe("GitHubReader bounds and classifies every call", () => {
  it("a 500 is retryable and asked once: no hidden retries", async () => {
    handle = json(500, { message: "Server Error" });
    const { error } = await failure(GitHub().readFile(github, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(RetryableError);
    expect(classify(error).retryable).toBe(true);
    expect((error as Error).message).toMatch(/^GitHub reading \.hoist\.yml of octo-org\/app@/);
    expect(asked).toHaveLength(1);
  });

  it("a server that never answers fails within the deadline, retryable", async () => {
    handle = never;
    const { error, ms } = await failure(GitHub().readFile(github, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toContain("GitHub did not answer reading .hoist.yml of octo-org/app");
    expect((error as Error).message).toContain("within 0.4 s");
    expect(ms).toBeGreaterThanOrEqual(390);
    expect(ms).toBeLessThan(3000);
  });

  it("an answer that comes late but within the deadline is read", async () => {
    handle = after(150, rawFile);
    expect(await GitHub({ timeoutMs: 3000, archiveTimeoutMs: 3000 }).readFile(github, SHA, ".hoist.yml")).toBe(HOIST_YML);
  });

  it("a missing file is no .hoist.yml (404), as before", async () => {
    handle = json(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest/repos/contents#get-repository-content" });
    expect(await GitHub().readFile(github, SHA, ".hoist.yml")).toBeUndefined();
  });

  it.each([401, 403])("a refused token (%i) is permanent and names GITHUB_TOKEN", async (status) => {
    handle = json(status, { message: status === 401 ? "Bad credentials" : "Resource not accessible by personal access token" });
    const { error } = await failure(GitHub().readFile(github, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(PermanentError);
    expect(classify(error).retryable).toBe(false);
    expect((error as Error).message).toContain("GITHUB_TOKEN");
    expect(asked).toHaveLength(1);
  });

  it("a rate limit (403, x-ratelimit-remaining: 0) is retryable after its reset, not waited for inside the call", async () => {
    const reset = Math.floor(Date.now() / 1000) + 120;
    handle = json(403, { message: "API rate limit exceeded" }, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) });
    const { error, ms } = await failure(GitHub().readFile(github, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBeGreaterThan(100_000);
    expect((error as RetryableError).retryAfterMs).toBeLessThanOrEqual(120_000);
    expect(ms).toBeLessThan(3000);
    expect(asked).toHaveLength(1);
  });

  it("a secondary rate limit (retry-after) carries its wait", async () => {
    handle = json(403, { message: "You have exceeded a secondary rate limit" }, { "retry-after": "30" });
    const { error } = await failure(GitHub().readFile(github, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(30_000);
  });

  it("an unreachable API is retryable", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const reader = new GitHubReader(githubClient({ token: "t", baseUrl: `http://127.0.0.1:${port}` }), { timeoutMs: 2000 });
    const { error } = await failure(reader.readFile(github, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(RetryableError);
  });

  it("a 500 for an archive is retryable, asked once", async () => {
    handle = json(502, { message: "Server Error" });
    const { error } = await failure(GitHub().archive(github, SHA));
    expect(error).toBeInstanceOf(RetryableError);
    expect(asked).toHaveLength(1);
  });
});

describe.each([
  { provider: "GitHub", read: (t: { timeoutMs: number; archiveTimeoutMs: number }) => GitHub(t).archive(github, SHA), type: "application/x-gzip", starts: "GitHub did not start sending the tarball of octo-org/app" },
  { provider: "GitLab", read: (t: { timeoutMs: number; archiveTimeoutMs: number }) => GitLab(t).archive(gitlab, SHA), type: "application/octet-stream", starts: "GitLab did not start sending the archive of mike/diaspora" },
])("$provider's archive has deadlines of its own", ({ read, type, starts }) => {
  it("an archive whose answer never starts fails within the answer deadline", async () => {
    handle = never;
    const { error, ms } = await failure(read({ timeoutMs: 300, archiveTimeoutMs: 5000 }));
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toContain(starts);
    expect(ms).toBeLessThan(3000);
  });

  it("an archive whose body stalls fails within the whole-download deadline", async () => {
    handle = (_req, res) => {
      res.writeHead(200, { "content-type": type });
      res.write(Buffer.from([0x1f, 0x8b]));
    };
    const started = Date.now();
    const out = await read({ timeoutMs: 300, archiveTimeoutMs: 700 });
    const error = await new Promise((resolve) => out.on("error", resolve));
    expect(classify(error).retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it("an archive that starts late but within the deadline is read whole", async () => {
    const bytes = await archiveBytes();
    handle = after(150, archiveOf(bytes));
    const files = await tarFiles(await read({ timeoutMs: 3000, archiveTimeoutMs: 5000 }));
    expect(files.get(".hoist.yml")).toBe(HOIST_YML);
  });
});

describe("GITHUB_API_URL (GitHub Enterprise Server)", () => {
  it("createSourceRouter's githubApiUrl is the base URL the reader calls", async () => {
    handle = rawFile;
    const router = createSourceRouter({ githubToken: "ghp_test", githubApiUrl: `${base}/api/v3/` });
    expect(await router.readFile(github, SHA, ".hoist.yml")).toBe(HOIST_YML);
    expect(asked).toEqual([`GET /api/v3/repos/octo-org/app/contents/.hoist.yml?ref=${SHA}`]);
  });
});

describe("GitLabReader bounds and classifies every call", () => {
  it("a 500 is retryable", async () => {
    handle = json(500, { message: "500 Internal Server Error" });
    const { error } = await failure(GitLab().readFile(gitlab, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toMatch(/^GitLab reading \.hoist\.yml of mike\/diaspora@/);
    expect(asked).toHaveLength(1);
  });

  it("a server that never answers fails within the deadline (gitbeaker's is 300 s), retryable", async () => {
    handle = never;
    const { error, ms } = await failure(GitLab().readFile(gitlab, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(RetryableError);
    expect(ms).toBeGreaterThanOrEqual(390);
    expect(ms).toBeLessThan(3000);
  });

  it("an answer that comes late but within the deadline is read", async () => {
    handle = after(150, rawFile);
    expect(await GitLab({ timeoutMs: 3000, archiveTimeoutMs: 3000 }).readFile(gitlab, SHA, ".hoist.yml")).toBe(HOIST_YML);
  });

  it("a missing file is no .hoist.yml (404)", async () => {
    handle = json(404, { message: "404 File Not Found" });
    expect(await GitLab().readFile(gitlab, SHA, ".hoist.yml")).toBeUndefined();
  });

  it.each([401, 403])("a refused token (%i) is permanent and names GITLAB_TOKEN", async (status) => {
    handle = json(status, { message: status === 401 ? "401 Unauthorized" : "403 Forbidden" });
    const { error } = await failure(GitLab().readFile(gitlab, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as Error).message).toContain("GITLAB_TOKEN");
  });

  it("a 429 is retryable, after gitbeaker's own retries, which are short and bounded", async () => {
    // gitbeaker retries a 429 or 502 ten times, 0.25 ms to 128 ms apart (it has no option to
    // turn this off), then gives up; all of it runs inside the call's deadline.
    handle = json(429, { message: "Retry later" }, { "retry-after": "7" });
    const { error, ms } = await failure(GitLab().readFile(gitlab, SHA, ".hoist.yml"));
    expect(error).toBeInstanceOf(RetryableError);
    expect(asked).toHaveLength(10);
    expect(ms).toBeLessThan(3000);
  });

  it("an archive that does not exist is a NotFoundError", async () => {
    handle = json(404, { message: "404 Project Not Found" });
    const { error } = await failure(GitLab().archive(gitlab, SHA));
    expect(error).toBeInstanceOf(NotFoundError);
  });
});

/**
 * resolveRef against the answers GitHub documents for "Get a commit" with the sha media type
 * (https://docs.github.com/rest/commits/commits#get-a-commit: the sha as text; 422 "No commit
 * found for SHA" for a ref that resolves to none) and GitLab documents for a branch, a tag and a
 * commit (https://docs.gitlab.com/api/branches/#get-single-repository-branch, tags, commits).
 */
describe("resolveRef", () => {
  const OTHER = "0000000000000000000000000000000000000001";
  const github422 = (ref: string) => json(422, { message: `No commit found for SHA: ${ref}`, documentation_url: "https://docs.github.com/rest/commits/commits#get-a-commit", status: "422" });
  /** GitHub's commits API: heads/main and tags/v1.0.0 exist, and SHA. */
  const githubCommits: Handler = (req, res) => {
    const ref = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.replace("/repos/octo-org/app/commits/", ""));
    const sha = { "heads/main": SHA, "heads/release/1.0": OTHER, "tags/v1.0.0": OTHER, [SHA]: SHA }[ref];
    if (req.headers.accept !== "application/vnd.github.v3.sha") return json(415, { message: "Unsupported media type" })(req, res);
    if (!sha) return github422(ref)(req, res);
    res.writeHead(200, { "content-type": "application/vnd.github.v3.sha; charset=utf-8" });
    res.end(sha);
  };

  describe("GitHubReader", () => {
    it("resolves a branch by its full name to its head, asking for the sha alone", async () => {
      handle = githubCommits;
      expect(await GitHub().resolveRef(github, "main")).toEqual({ branch: "main", sha: SHA });
      expect(await GitHub().resolveRef(github, "refs/heads/release/1.0")).toEqual({ branch: "release/1.0", sha: OTHER });
      expect(asked).toEqual(["GET /repos/octo-org/app/commits/heads%2Fmain", "GET /repos/octo-org/app/commits/heads%2Frelease%2F1.0"]);
    });

    it("resolves a tag to its commit and returns a sha that exists as it is", async () => {
      handle = githubCommits;
      expect(await GitHub().resolveRef(github, "refs/tags/v1.0.0")).toEqual({ tag: "v1.0.0", sha: OTHER });
      expect(await GitHub().resolveRef(github, SHA)).toEqual({ sha: SHA });
    });

    it("answers undefined for a ref or sha that does not exist (422) and a repository it cannot see (404)", async () => {
      handle = githubCommits;
      expect(await GitHub().resolveRef(github, "gone")).toBeUndefined();
      expect(await GitHub().resolveRef(github, "f".repeat(40))).toBeUndefined();
      handle = json(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest/commits/commits#get-a-commit" });
      expect(await GitHub().resolveRef(github, "main")).toBeUndefined();
    });

    it("asks nothing for a name no ref can have", async () => {
      handle = githubCommits;
      for (const bad of ["main~1", "v1^{tree}", "-x", "a..b", "refs/notes/x", "a b", "main.lock", ""]) expect(await GitHub().resolveRef(github, bad), bad).toBeUndefined();
      expect(asked).toEqual([]);
    });

    it("is bounded by the deadline and classified like the other calls", async () => {
      handle = never;
      const late = await failure(GitHub().resolveRef(github, "main"));
      expect(late.error).toBeInstanceOf(RetryableError);
      expect((late.error as Error).message).toContain("GitHub did not answer resolving main in octo-org/app within 0.4 s");
      expect(late.ms).toBeLessThan(3000);
      handle = json(502, { message: "Server Error" });
      expect((await failure(GitHub().resolveRef(github, "main"))).error).toBeInstanceOf(RetryableError);
      handle = json(401, { message: "Bad credentials" });
      expect((await failure(GitHub().resolveRef(github, "main"))).error).toBeInstanceOf(PermanentError);
    });
  });

  describe("GitLabReader", () => {
    const commit = (id: string) => ({ id, short_id: id.slice(0, 8), title: "Initial commit", parent_ids: [], committed_date: "2024-01-01T00:00:00.000Z" });
    /** GitLab's branches, tags and commits of project 15: main and release/1.0, v1.0.0 (annotated), SHA. */
    const gitlabRefs: Handler = (req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname.replace("/api/v4/projects/15/repository/", "");
      const [kind, ...rest] = path.split("/");
      const name = decodeURIComponent(rest.join("/"));
      if (kind === "branches" && (name === "main" || name === "release/1.0"))
        return json(200, { name, merged: false, protected: name === "main", default: name === "main", commit: commit(name === "main" ? SHA : OTHER) })(req, res);
      if (kind === "tags" && name === "v1.0.0") return json(200, { name, message: "Version 1.0.0", target: "2695effb5807a22ff3d138d593fd856244e155e7", commit: commit(OTHER), release: null, protected: false })(req, res);
      if (kind === "commits" && name === SHA) return json(200, commit(SHA))(req, res);
      const missing = { branches: "Branch", tags: "Tag", commits: "Commit" }[kind ?? ""] ?? "File";
      return json(404, { message: `404 ${missing} Not Found` })(req, res);
    };

    it("resolves a branch, a tag and a sha by their own endpoints", async () => {
      handle = gitlabRefs;
      expect(await GitLab().resolveRef(gitlab, "main")).toEqual({ branch: "main", sha: SHA });
      expect(await GitLab().resolveRef(gitlab, "refs/heads/release/1.0")).toEqual({ branch: "release/1.0", sha: OTHER });
      expect(await GitLab().resolveRef(gitlab, "refs/tags/v1.0.0")).toEqual({ tag: "v1.0.0", sha: OTHER });
      expect(await GitLab().resolveRef(gitlab, SHA)).toEqual({ sha: SHA });
      expect(asked).toEqual([
        "GET /api/v4/projects/15/repository/branches/main",
        "GET /api/v4/projects/15/repository/branches/release%2F1.0",
        "GET /api/v4/projects/15/repository/tags/v1.0.0",
        `GET /api/v4/projects/15/repository/commits/${SHA}`,
      ]);
    });

    it("answers undefined for what does not exist (404)", async () => {
      handle = gitlabRefs;
      expect(await GitLab().resolveRef(gitlab, "gone")).toBeUndefined();
      expect(await GitLab().resolveRef(gitlab, "refs/tags/v9")).toBeUndefined();
      expect(await GitLab().resolveRef(gitlab, OTHER)).toBeUndefined();
    });

    it("is bounded by the deadline and classified like the other calls", async () => {
      handle = never;
      const late = await failure(GitLab().resolveRef(gitlab, "main"));
      expect(late.error).toBeInstanceOf(RetryableError);
      expect(late.ms).toBeLessThan(3000);
      handle = json(500, { message: "500 Internal Server Error" });
      const outage = await failure(GitLab().resolveRef(gitlab, "main"));
      expect(outage.error).toBeInstanceOf(RetryableError);
      expect((outage.error as Error).message).toMatch(/^GitLab resolving main in mike\/diaspora/);
      handle = json(403, { message: "403 Forbidden" });
      expect((await failure(GitLab().resolveRef(gitlab, "main"))).error).toBeInstanceOf(PermanentError);
    });
  });
});
