import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pathToFileURL } from "node:url";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import { LocalGitReader } from "../../lib/scm/local.ts";
import type { SourceReader } from "../../lib/scm/port.ts";
import { SourceRouter } from "../../lib/scm/source.ts";
import { tarFiles } from "../support/tar.ts";

const HOIST_YML = "pipeline:\n  build: {}\n";
const DOCKERFILE = "FROM alpine:3.20\nCMD [\"true\"]\n";


let dir: string;
let sha: string;
let repo: RepoRef;

function git(...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=Hoist Test", "-c", "user.email=test@hoist.invalid", "-C", dir, ...args], {
    encoding: "utf8",
  }).trim();
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "hoist-local-reader-"));
  git("init", "--quiet", "--initial-branch=main");
  writeFileSync(join(dir, ".hoist.yml"), HOIST_YML);
  writeFileSync(join(dir, "Dockerfile"), DOCKERFILE);
  git("add", ".hoist.yml", "Dockerfile");
  git("commit", "--quiet", "--no-gpg-sign", "-m", "initial");
  sha = git("rev-parse", "HEAD");
  repo = { provider: "github", fullName: "local/demo", cloneUrl: dir };
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("LocalGitReader", () => {
  const reader = new LocalGitReader({ allowLocalRepos: true });

  it("reads a file at a commit", async () => {
    expect(await reader.readFile(repo, sha, ".hoist.yml")).toBe(HOIST_YML);
    expect(await reader.readFile(repo, sha, "Dockerfile")).toBe(DOCKERFILE);
  });

  it("accepts a file:// clone URL", async () => {
    const viaUrl = { ...repo, cloneUrl: pathToFileURL(dir).href };
    expect(await reader.readFile(viaUrl, sha, "Dockerfile")).toBe(DOCKERFILE);
  });

  it("answers undefined for a path missing at that commit", async () => {
    expect(await reader.readFile(repo, sha, "missing.txt")).toBeUndefined();
  });

  it("sees the file as it was at the commit, not the working tree", async () => {
    writeFileSync(join(dir, ".hoist.yml"), "changed: true\n");
    expect(await reader.readFile(repo, sha, ".hoist.yml")).toBe(HOIST_YML);
  });

  it("archives the tree with files at the root", async () => {
    const files = await tarFiles(await reader.archive(repo, sha), { filesOnly: true });
    expect([...files.keys()].sort()).toEqual([".hoist.yml", "Dockerfile"]);
    expect(files.get("Dockerfile")).toBe(DOCKERFILE);
  });

  it("rejects a commit that does not exist", async () => {
    const absent = "0123456789abcdef0123456789abcdef01234567";
    await expect(reader.readFile(repo, absent, ".hoist.yml")).rejects.toThrow(/not found/);
    await expect(reader.archive(repo, absent)).rejects.toThrow(/not found/);
  });

  it("rejects a sha that is not hex, so it cannot smuggle git options", async () => {
    for (const bad of ["--output=/tmp/x", "HEAD", "main", `${sha}^`, ""]) {
      await expect(reader.readFile(repo, bad, ".hoist.yml"), bad).rejects.toThrow(/invalid commit sha/);
      await expect(reader.archive(repo, bad), bad).rejects.toThrow(/invalid commit sha/);
    }
  });

  it("rejects a clone URL that is not a local absolute path", async () => {
    await expect(reader.readFile({ ...repo, cloneUrl: "relative/path" }, sha, "Dockerfile")).rejects.toThrow(/absolute path/);
  });

  it("refuses everything when local repositories are not allowed", async () => {
    const refusing = new LocalGitReader({ allowLocalRepos: false });
    await expect(refusing.readFile(repo, sha, ".hoist.yml")).rejects.toThrow(/HOIST_ALLOW_LOCAL_REPOS=1/);
    await expect(refusing.archive(repo, sha)).rejects.toThrow(/HOIST_ALLOW_LOCAL_REPOS=1/);
    await expect(refusing.resolveRef(repo, "main")).rejects.toThrow(/HOIST_ALLOW_LOCAL_REPOS=1/);
  });
});

describe("LocalGitReader.resolveRef", () => {
  const reader = new LocalGitReader({ allowLocalRepos: true });
  let next: string;

  beforeAll(() => {
    // A second commit on release/1.0, an annotated tag on it, and a tag named like a branch.
    git("checkout", "--quiet", "-b", "release/1.0");
    git("commit", "--quiet", "--no-gpg-sign", "--allow-empty", "-m", "second");
    next = git("rev-parse", "HEAD");
    git("tag", "--no-sign", "-a", "v1.0.0", "-m", "Version 1.0.0");
    git("checkout", "--quiet", "main");
    git("tag", "--no-sign", "main", sha);
  });

  it("resolves a branch by name or full ref to its head", async () => {
    expect(await reader.resolveRef(repo, "main")).toEqual({ branch: "main", sha });
    expect(await reader.resolveRef(repo, "refs/heads/release/1.0")).toEqual({ branch: "release/1.0", sha: next });
  });

  it("resolves a tag to its commit, an annotated one peeled, and never takes a branch for a tag", async () => {
    expect(await reader.resolveRef(repo, "refs/tags/v1.0.0")).toEqual({ tag: "v1.0.0", sha: next });
    expect(await reader.resolveRef(repo, "refs/tags/main")).toEqual({ tag: "main", sha });
    expect(await reader.resolveRef(repo, "release/1.0")).toEqual({ branch: "release/1.0", sha: next });
  });

  it("returns a sha the repository has as it is, and undefined for one it has not", async () => {
    expect(await reader.resolveRef(repo, next)).toEqual({ sha: next });
    expect(await reader.resolveRef(repo, "0123456789abcdef0123456789abcdef01234567")).toBeUndefined();
  });

  it("answers undefined for a missing ref and for names that are revision expressions or options", async () => {
    for (const bad of ["gone", "refs/tags/v9", "main~1", "main^", "HEAD@{1}", "--output=/tmp/x", "refs/notes/commits", "main:README"])
      expect(await reader.resolveRef(repo, bad), bad).toBeUndefined();
  });

  it("fails for a directory that is not a repository", async () => {
    await expect(reader.resolveRef({ ...repo, cloneUrl: tmpdir() }, "main")).rejects.toThrow();
  });
});

describe("SourceRouter", () => {
  const remote = (name: string): SourceReader => ({
    readFile: async () => `from ${name}`,
    archive: async () => {
      throw new Error(`${name} archive`);
    },
    resolveRef: async (_repo, ref) => ({ branch: ref, sha: `${name}-head` }),
  });

  it("sends local clone URLs to the local reader whatever the provider", async () => {
    const router = new SourceRouter({ local: new LocalGitReader({ allowLocalRepos: true }), github: remote("github") });
    expect(await router.readFile(repo, sha, "Dockerfile")).toBe(DOCKERFILE);
    expect(await router.readFile({ ...repo, provider: "gitlab" }, sha, "Dockerfile")).toBe(DOCKERFILE);
    expect(await router.resolveRef(repo, "main")).toEqual({ branch: "main", sha });
  });

  it("sends remote repositories to their provider's reader", async () => {
    const router = new SourceRouter({ github: remote("github"), gitlab: remote("gitlab") });
    const hosted = (provider: "github" | "gitlab"): RepoRef => ({ provider, fullName: "o/r", cloneUrl: `https://${provider}.com/o/r.git` });
    expect(await router.readFile(hosted("github"), sha, "x")).toBe("from github");
    expect(await router.readFile(hosted("gitlab"), sha, "x")).toBe("from gitlab");
    await expect(router.archive(hosted("gitlab"), sha)).rejects.toThrow("gitlab archive");
    expect(await router.resolveRef(hosted("github"), "main")).toEqual({ branch: "main", sha: "github-head" });
  });

  it("names the setting to add when a reader is missing", async () => {
    const router = new SourceRouter({});
    const hosted = (provider: "github" | "gitlab"): RepoRef => ({ provider, fullName: "o/r", cloneUrl: `https://${provider}.com/o/r.git` });
    await expect(router.readFile(hosted("github"), sha, "x")).rejects.toThrow(/GITHUB_TOKEN/);
    await expect(router.archive(hosted("gitlab"), sha)).rejects.toThrow(/GITLAB_TOKEN/);
    // Local repositories stay off unless the server was started to allow them.
    await expect(router.readFile(repo, sha, "Dockerfile")).rejects.toThrow(/HOIST_ALLOW_LOCAL_REPOS=1/);
  });
});
