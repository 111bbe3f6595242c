import { execFile, spawn } from "node:child_process";
import { isAbsolute } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { BadInputError, NotFoundError, PermanentError } from "../errors.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import type { ResolvedRef, SourceReader } from "./port.ts";
import { refTarget } from "./refs.ts";

const run = promisify(execFile);
const SHA = /^[0-9a-f]{7,64}$/i;
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** The filesystem path of a local clone URL (absolute path or file://), else undefined. */
export function localRepoPath(cloneUrl: string): string | undefined {
  if (cloneUrl.startsWith("file://")) {
    try {
      return fileURLToPath(cloneUrl);
    } catch {
      return undefined;
    }
  }
  return isAbsolute(cloneUrl) ? cloneUrl : undefined;
}

export interface LocalGitReaderOptions {
  /**
   * Off in production: a webhook names the clone URL, so reading local paths would
   * let whoever can sign a delivery read any repository on the server.
   */
  allowLocalRepos: boolean;
}

/** Reads repositories on this machine with the git CLI (demo, tests, self-hosted). */
export class LocalGitReader implements SourceReader {
  constructor(private readonly options: LocalGitReaderOptions) {}

  async readFile(repo: RepoRef, sha: string, path: string): Promise<string | undefined> {
    const dir = this.checked(repo, sha);
    const file = path.replace(/^(\.\/|\/)+/, "");
    if (!file || file.includes("\0")) throw new BadInputError(`invalid file path ${JSON.stringify(path)}`);
    try {
      // cat-file blob, unlike show, fails on a directory instead of printing a listing.
      const { stdout } = await run("git", ["-C", dir, "cat-file", "blob", `${sha}:${file}`], {
        maxBuffer: MAX_FILE_BYTES,
      });
      return stdout;
    } catch (err) {
      // A failure means either no such path or no such commit; only the latter is an error.
      await this.assertCommit(dir, sha);
      if (isExecError(err) && err.code === 128) return undefined;
      throw err;
    }
  }

  async archive(repo: RepoRef, sha: string): Promise<Readable> {
    const dir = this.checked(repo, sha);
    // Checked first so a bad sha rejects here rather than surfacing mid-stream.
    await this.assertCommit(dir, sha);
    const child = spawn("git", ["-C", dir, "archive", "--format=tar", sha], { stdio: ["ignore", "pipe", "pipe"] });
    const out = new PassThrough();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    // End the stream only once git has exited 0: a tar cut short by a failing git
    // must reach the reader as an error, not as a complete-looking archive.
    child.stdout.pipe(out, { end: false });
    child.on("error", (err) => out.destroy(err));
    child.on("close", (code, signal) => {
      if (code === 0) out.end();
      else out.destroy(new Error(`git archive ${sha} in ${dir} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
    out.once("close", () => {
      if (child.exitCode === null) child.kill();
    });
    return out;
  }

  async resolveRef(repo: RepoRef, ref: string): Promise<ResolvedRef | undefined> {
    const dir = this.repoDir(repo);
    const target = refTarget(ref);
    if (!target) return undefined;
    // Fully qualified, so a branch is not taken for a tag of the same name; ^{commit} peels an
    // annotated tag and checks that a sha is a commit this repository has.
    const name = "sha" in target ? target.sha : "branch" in target ? `refs/heads/${target.branch}` : `refs/tags/${target.tag}`;
    try {
      const { stdout } = await run("git", ["-C", dir, "rev-parse", "--verify", "--quiet", `${name}^{commit}`]);
      return { ...target, sha: stdout.trim() };
    } catch (err) {
      // --verify --quiet exits 1, saying nothing, when the name resolves to no commit.
      if (isExecError(err) && err.code === 1) return undefined;
      throw err;
    }
  }

  private checked(repo: RepoRef, sha: string): string {
    const dir = this.repoDir(repo);
    // A hex sha cannot be mistaken for a git option or a revision expression.
    if (!SHA.test(sha)) throw new BadInputError(`invalid commit sha ${JSON.stringify(sha)}`);
    return dir;
  }

  private repoDir(repo: RepoRef): string {
    if (!this.options.allowLocalRepos) {
      throw new PermanentError(
        "local repositories are disabled: set HOIST_ALLOW_LOCAL_REPOS=1 to let Hoist read repositories from this machine",
      );
    }
    const dir = localRepoPath(repo.cloneUrl);
    if (!dir) throw new BadInputError(`${repo.cloneUrl} is not an absolute path or file:// URL`);
    return dir;
  }

  private async assertCommit(dir: string, sha: string): Promise<void> {
    try {
      await run("git", ["-C", dir, "rev-parse", "--verify", "--quiet", `${sha}^{commit}`]);
    } catch (err) {
      // A string code is a spawn failure (git missing), not an answer about the commit.
      if (isExecError(err) && typeof err.code === "string") throw err;
      const detail = isExecError(err) && err.stderr ? `: ${String(err.stderr).trim()}` : "";
      throw new NotFoundError(`commit ${sha} not found in ${dir}${detail}`);
    }
  }
}

function isExecError(err: unknown): err is Error & { code?: number | string; stderr?: string | Buffer } {
  return err instanceof Error && "code" in err;
}
