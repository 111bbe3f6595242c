import type { Readable } from "node:stream";
import { GitbeakerRequestError, type Gitlab } from "@gitbeaker/rest";
import type { RepoRef } from "../pipeline/run.ts";
import type { SourceReader } from "./port.ts";
import { fromWebBody, stripFirstComponent } from "../tar.ts";

/** GitLab accepts the numeric project id or the URL-encoded path; the id survives renames. */
function projectOf(repo: RepoRef): string | number {
  return repo.id ?? repo.fullName;
}

/** Reads repositories through the GitLab REST API. */
export class GitLabReader implements SourceReader {
  constructor(private readonly gitlab: InstanceType<typeof Gitlab>) {}

  async readFile(repo: RepoRef, sha: string, path: string): Promise<string | undefined> {
    try {
      const raw = await this.gitlab.RepositoryFiles.showRaw(projectOf(repo), path.replace(/^\/+/, ""), sha);
      return typeof raw === "string" ? raw : await raw.text();
    } catch (err) {
      if (err instanceof GitbeakerRequestError && err.cause?.response.status === 404) return undefined;
      throw err;
    }
  }

  async archive(repo: RepoRef, sha: string): Promise<Readable> {
    const body = await this.gitlab.Repositories.showArchive(projectOf(repo), { sha, fileType: "tar.gz", asStream: true });
    return stripFirstComponent(fromWebBody(body, `GitLab archive of ${repo.fullName}@${sha}`));
  }
}
