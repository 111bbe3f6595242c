import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import { GitHubReader, githubClient } from "../../lib/scm/github.ts";
import { GitLabReader } from "../../lib/scm/gitlab.ts";
import { stripFirstComponent } from "../../lib/tar.ts";
import { tarFiles } from "../support/tar.ts";

/** One recorded HTTP interaction, as @octokit/fixtures stores them (nock's format). */
interface Recorded {
  scope: string;
  method: string;
  path: string;
  status: number;
  response: unknown;
  responseIsBinary: boolean;
  headers: Record<string, string | number>;
}

const fixtureDir = createRequire(import.meta.url).resolve("@octokit/fixtures/package.json").replace(/package\.json$/, "");
function scenario(name: string): Recorded[] {
  return JSON.parse(readFileSync(`${fixtureDir}scenarios/api.github.com/${name}/normalized-fixture.json`, "utf8")) as Recorded[];
}

const SHA = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d";
const HOIST_YML = "pipeline:\n  build: {}\n";

/** GitHub's documented JSON shape for a file (https://docs.github.com/rest/repos/contents). */
const documentedFile = {
  type: "file",
  encoding: "base64",
  size: HOIST_YML.length,
  name: ".hoist.yml",
  path: ".hoist.yml",
  // GitHub wraps base64 content at 60 characters.
  content: Buffer.from(HOIST_YML).toString("base64").replace(/.{60}/g, "$&\n"),
  sha: "3d21ec53a331a6f037a91c368710b99387d012c1",
  url: "https://api.github.com/repos/octokit/octokit.rb/contents/.hoist.yml",
};


let server: Server;
let base: string;
/** What the server was asked, and what it answered. */
const seen: { path: string; query: URLSearchParams; accept: string | undefined; status: number }[] = [];

/**
 * Replays recorded interactions by method and path, rewriting redirects to the
 * recorded hosts (api.github.com, codeload.github.com) onto this server.
 */
function replay(recorded: Recorded[]): Server {
  return createServer((req, res) => {
    // GitHub serves a path with or without its trailing slash alike.
    const trim = (p: string) => p.replace(/\/+$/, "");
    const url = new URL(req.url ?? "/", "http://x");
    const path = trim(url.pathname);
    const hit = recorded.find((r) => r.method.toUpperCase() === req.method && trim(r.path) === path);
    seen.push({ path: url.pathname, query: url.searchParams, accept: req.headers.accept, status: hit?.status ?? 404 });
    if (!hit) {
      // GitHub's documented answer for a missing resource.
      res.writeHead(404, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify({ message: "Not Found", documentation_url: "https://docs.github.com/rest" }));
      return;
    }
    const body =
      hit.responseIsBinary ? Buffer.from(String(hit.response), "hex")
      : typeof hit.response === "string" ? Buffer.from(hit.response)
      : Buffer.from(JSON.stringify(hit.response));
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(hit.headers)) {
      if (name === "content-length" || name === "connection") continue;
      headers[name] = String(value).replace(/^https:\/\/(api|codeload)\.github\.com/, base);
    }
    res.writeHead(hit.status, { ...headers, "content-length": String(body.length) });
    res.end(body);
  });
}

beforeAll(async () => {
  const recorded: Recorded[] = [
    ...scenario("get-content"),
    ...scenario("get-archive"),
    {
      scope: "https://api.github.com:443",
      method: "get",
      path: "/repos/octokit/octokit.rb/contents/.hoist.yml",
      status: 200,
      response: documentedFile,
      responseIsBinary: false,
      headers: { "content-type": "application/json; charset=utf-8" },
    },
  ];
  server = replay(recorded);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function reader(): GitHubReader {
  return new GitHubReader(githubClient({ token: "0000000000000000000000000000000000000001", baseUrl: base }));
}

const repo = (fullName: string): RepoRef => ({
  provider: "github",
  fullName,
  id: 1,
  cloneUrl: `https://github.com/${fullName}.git`,
});

describe("GitHubReader against recorded GitHub responses", () => {
  it("reads a file through the raw media type, at the given ref (get-content)", async () => {
    seen.length = 0;
    expect(await reader().readFile(repo("octokit-fixture-org/hello-world"), SHA, "README.md")).toBe("# hello-world");
    const [req] = seen;
    expect(req?.accept).toBe("application/vnd.github.v3.raw");
    expect(req?.query.get("ref")).toBe(SHA);
  });

  it("decodes base64 content when the server answers in the JSON form", async () => {
    expect(await reader().readFile(repo("octokit/octokit.rb"), SHA, ".hoist.yml")).toBe(HOIST_YML);
  });

  it("answers undefined for a missing file (404)", async () => {
    seen.length = 0;
    expect(await reader().readFile(repo("octokit-fixture-org/hello-world"), SHA, "nope.txt")).toBeUndefined();
    expect(seen.map((r) => r.status)).toEqual([404]);
  });

  it("answers undefined for a directory (the recorded listing of the root)", async () => {
    seen.length = 0;
    expect(await reader().readFile(repo("octokit-fixture-org/hello-world"), SHA, "")).toBeUndefined();
    expect(seen.map((r) => [r.path, r.status])).toEqual([["/repos/octokit-fixture-org/hello-world/contents", 200]]);
  });

  it("follows the tarball redirect and strips the top-level directory (get-archive)", async () => {
    seen.length = 0;
    // The recording asked for ref "main"; the reader passes its sha argument through as the ref.
    const archive = await reader().archive(repo("octokit-fixture-org/get-archive"), "main");
    const files = await tarFiles(archive);
    expect([...files.keys()]).toEqual(["README.md"]);
    expect(files.get("README.md")).toBe("# get-archive");
    expect(seen.map((r) => [r.path, r.status])).toEqual([
      ["/repos/octokit-fixture-org/get-archive/tarball/main", 302],
      ["/octokit-fixture-org/get-archive/legacy.tar.gz/refs/heads/main", 200],
    ]);
  });

  it("rejects a repository name that is not owner/name", async () => {
    await expect(reader().readFile(repo("just-a-name"), SHA, "README.md")).rejects.toThrow(/owner\/name/);
  });
});

/**
 * GitLabReader shares the archive path (stripFirstComponent) with GitHubReader, so
 * it is checked here too, against GitLab's documented REST answers: raw file text,
 * `{"message":"404 File Not Found"}`, and a tar.gz whose entries sit under
 * `<project>-<sha>-<sha>/`.
 */
describe("GitLabReader against GitLab's documented responses", () => {
  const PROJECT_SHA = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
  let gitlabServer: Server;
  let gitlabBase: string;
  let archive: Buffer;

  beforeAll(async () => {
    const pack = tar.pack();
    const top = `diaspora-${PROJECT_SHA}-${PROJECT_SHA}/`;
    pack.entry({ name: top, type: "directory" });
    pack.entry({ name: `${top}.hoist.yml` }, HOIST_YML);
    pack.entry({ name: `${top}app/`, type: "directory" });
    pack.entry({ name: `${top}app/main.rb` }, "puts 1\n");
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    archive = gzipSync(Buffer.concat(chunks));

    gitlabServer = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/api/v4/projects/15/repository/files/.hoist.yml/raw" && url.searchParams.get("ref") === PROJECT_SHA) {
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
        res.end(HOIST_YML);
      } else if (url.pathname === "/api/v4/projects/15/repository/archive.tar.gz" && url.searchParams.get("sha") === PROJECT_SHA) {
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(archive.length) });
        res.end(archive);
      } else {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: "404 File Not Found" }));
      }
    });
    await new Promise<void>((resolve) => gitlabServer.listen(0, "127.0.0.1", resolve));
    gitlabBase = `http://127.0.0.1:${(gitlabServer.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => gitlabServer.close(resolve));
  });

  const project: RepoRef = { provider: "gitlab", fullName: "mike/diaspora", id: 15, cloneUrl: "http://example.com/mike/diaspora.git" };
  const gitlab = () => new GitLabReader({ host: gitlabBase, token: "glpat-test" });

  it("reads a raw file at the sha", async () => {
    expect(await gitlab().readFile(project, PROJECT_SHA, ".hoist.yml")).toBe(HOIST_YML);
  });

  it("answers undefined for a missing file (404)", async () => {
    expect(await gitlab().readFile(project, PROJECT_SHA, "missing.yml")).toBeUndefined();
  });

  it("strips the top-level directory from the archive", async () => {
    const files = await tarFiles(await gitlab().archive(project, PROJECT_SHA));
    expect([...files.keys()]).toEqual([".hoist.yml", "app/", "app/main.rb"]);
    expect(files.get(".hoist.yml")).toBe(HOIST_YML);
  });

  it("surfaces an archive that does not exist as an error", async () => {
    await expect(gitlab().archive(project, "0".repeat(40))).rejects.toThrow(/404/);
  });
});

describe("stripFirstComponent, which both readers share", () => {
  async function sampleTar(): Promise<Buffer> {
    const pack = tar.pack();
    pack.entry({ name: "top/", type: "directory" });
    pack.entry({ name: "top/a.txt" }, "a".repeat(100_000));
    pack.entry({ name: "top/link", type: "symlink", linkname: "a.txt" });
    pack.entry({ name: "top/hard", type: "link", linkname: "top/a.txt" });
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  it("takes a plain tar as well as a gzip one, however it is chunked", async () => {
    const plain = await sampleTar();
    const oneByteChunks = [...gzipSync(plain)].map((b) => Buffer.from([b]));
    for (const source of [Readable.from([plain]), Readable.from(oneByteChunks)]) {
      const files = await tarFiles(stripFirstComponent(source));
      expect([...files.keys()]).toEqual(["a.txt", "link", "hard"]);
      expect(files.get("a.txt")).toHaveLength(100_000);
    }
  });

  it("surfaces a corrupt gzip and a failing source as stream errors", async () => {
    await expect(tarFiles(stripFirstComponent(Readable.from([Buffer.from([0x1f, 0x8b, 1, 2, 3])])))).rejects.toThrow();
    const failing = new Readable({
      read() {
        this.destroy(new Error("socket reset"));
      },
    });
    const out = stripFirstComponent(failing);
    await expect(new Promise((_, reject) => out.on("error", reject))).rejects.toThrow("socket reset");
  });

  it("lets the reader stop early without an unhandled error", async () => {
    const out = stripFirstComponent(Readable.from([gzipSync(await sampleTar())]));
    out.once("data", () => out.destroy());
    await new Promise((resolve) => out.on("close", resolve));
    await new Promise((resolve) => setTimeout(resolve, 50));
  });
});
