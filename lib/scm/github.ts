import type { Readable } from "node:stream";
import { type Octokit, RequestError } from "octokit";
import type { RepoRef } from "../pipeline/run.ts";
import type { SourceReader } from "./port.ts";
import { fromWebBody, stripFirstComponent } from "../tar.ts";

function ownerAndRepo(repo: RepoRef): { owner: string; repo: string } {
  const [owner, name, ...rest] = repo.fullName.split("/");
  if (!owner || !name || rest.length) throw new Error(`GitHub repository name must be owner/name, got ${repo.fullName}`);
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

/** Reads repositories through the GitHub REST API. */
export class GitHubReader implements SourceReader {
  constructor(private readonly octokit: Octokit) {}

  async readFile(repo: RepoRef, sha: string, path: string): Promise<string | undefined> {
    try {
      // The raw media type returns the bytes themselves and works up to 100 MB; the
      // JSON form only carries base64 content for files under 1 MB.
      const res = await this.octokit.rest.repos.getContent({
        ...ownerAndRepo(repo),
        path: path.replace(/^\/+/, ""),
        ref: sha,
        mediaType: { format: "raw" },
      });
      return fileText(res.data);
    } catch (err) {
      if (err instanceof RequestError && err.status === 404) return undefined;
      throw err;
    }
  }

  async archive(repo: RepoRef, sha: string): Promise<Readable> {
    // The API answers with a redirect to codeload, which fetch follows; the body is
    // streamed rather than buffered since repositories can be large.
    const res = await this.octokit.rest.repos.downloadTarballArchive({
      ...ownerAndRepo(repo),
      ref: sha,
      request: { parseSuccessResponseBody: false },
    });
    return stripFirstComponent(fromWebBody(res.data, `GitHub tarball of ${repo.fullName}@${sha}`));
  }
}
