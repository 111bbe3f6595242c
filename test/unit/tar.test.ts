import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import Dockerode from "dockerode";
import tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { BadInputError, classify } from "../../lib/errors.ts";
import { stripFirstComponent, underDirectory } from "../../lib/tar.ts";
import { tarFiles } from "../support/tar.ts";

type Entry = Partial<tar.Header> & { name: string; body?: string };

/** A tar stream of exactly these entries, as a hostile archive would carry them. */
async function tarOf(entries: Entry[], gzip = false): Promise<Readable> {
  const pack = tar.pack();
  for (const { body, ...header } of entries) pack.entry(header, body ?? "");
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  return Readable.from([gzip ? gzipSync(bytes) : bytes]);
}

/** The error the re-packed stream fails with. */
async function refusal(stream: Readable): Promise<BadInputError> {
  let caught: unknown;
  try {
    await tarFiles(stream);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BadInputError);
  return caught as BadInputError;
}

const top = (name: string) => `owner-repo-7fd1a60/${name}`;
const dir = (name: string): Entry => ({ name, type: "directory" });
const file = (name: string, body = "x"): Entry => ({ name, type: "file", body });
const symlink = (name: string, linkname: string): Entry => ({ name, type: "symlink", linkname });
const hardlink = (name: string, linkname: string): Entry => ({ name, type: "link", linkname });

describe("provider archives (stripFirstComponent) refuse entries that could write outside the job", () => {
  const cases: [string, Entry[], string][] = [
    ["a file under a symlink to /tmp (the symlink is refused first)", [dir(top("")), symlink(top("lnk"), "/tmp"), file(top("lnk/x"))], "absolute"],
    ["a file under a symlink that points inside", [dir(top("")), dir(top("sub/")), symlink(top("lnk"), "sub"), file(top("lnk/x"))], "under the symlink lnk"],
    ["a directory under a symlink", [dir(top("")), symlink(top("lnk"), "."), dir(top("lnk/d/"))], "under the symlink lnk"],
    ["an entry that replaces a symlink", [dir(top("")), symlink(top("lnk"), "a"), file(top("lnk"))], "replaces a symlink"],
    ["a name with .. that climbs out", [dir(top("")), file(top("../../x"))], ".. component"],
    ["a name with .. that stays inside", [dir(top("")), file(top("a/../b"))], ".. component"],
    ["an absolute name", [dir(top("")), file("/etc/cron.d/x")], "absolute"],
    ["a top directory named ..", [file("../x/y")], ".. component"],
    ["a symlink that climbs above the root", [dir(top("")), symlink(top("up"), "..")], "points outside"],
    ["a nested symlink that climbs too far", [dir(top("")), symlink(top("a/b/up"), "../../../x")], "points outside"],
    ["a symlink with .. after a name", [dir(top("")), symlink(top("sub/up"), "x/../../..")], "after a name"],
    ["a hard link to an absolute path", [dir(top("")), hardlink(top("h"), "/etc/passwd")], "absolute"],
    ["a hard link that climbs out", [dir(top("")), hardlink(top("h"), `${top("../../etc/passwd")}`)], ".. component"],
    ["a hard link to a symlink", [dir(top("")), symlink(top("a/up"), ".."), hardlink(top("h"), top("a/up"))], "through the symlink a/up"],
    ["a hard link to the top directory", [dir(top("")), hardlink(top("h"), "owner-repo-7fd1a60")], "outside the archive"],
    ["a character device", [dir(top("")), { name: top("null"), type: "character-device", devmajor: 1, devminor: 3 }], "type character-device"],
    ["a fifo", [dir(top("")), { name: top("pipe"), type: "fifo" }], "type fifo"],
  ];

  it.each(cases)("%s", async (_label, entries, why) => {
    for (const gzip of [false, true]) {
      const err = await refusal(stripFirstComponent(await tarOf(entries, gzip)));
      expect(err.message).toContain(why);
      // The message names the refused entry as the archive has it.
      expect(err.message).toMatch(/the archive entry ".+" is refused/);
      // Permanent: the run fails with the message instead of retrying an outage forever.
      expect(classify(err).retryable).toBe(false);
      expect(err.status).toBe(400);
    }
  });

  it("names the entry that was refused", async () => {
    const err = await refusal(stripFirstComponent(await tarOf([dir(top("")), symlink(top("lnk"), "/tmp"), file(top("lnk/x"))])));
    expect(err.message).toBe(`the archive entry "${top("lnk")}" is refused: its symlink target "/tmp" is absolute or empty`);
    expect(err.context).toEqual({ entry: top("lnk") });
  });

  it("a normal archive, links inside it included, still extracts", async () => {
    const entries = [
      dir(top("")),
      file(top("README.md"), "# app"),
      dir(top("src/")),
      file(top("src/main.ts"), "export {};"),
      symlink(top("link"), "README.md"),
      symlink(top("src/up"), "../README.md"),
      symlink(top("src/self"), "./main.ts"),
      symlink(top("here"), "."),
      hardlink(top("hard"), top("src/main.ts")),
    ];
    const files = await tarFiles(stripFirstComponent(await tarOf(entries, true)));
    expect([...files.keys()]).toEqual(["README.md", "src/", "src/main.ts", "link", "src/up", "src/self", "here", "hard"]);
    expect(files.get("src/main.ts")).toBe("export {};");
  });
});

describe("every upload to a job (underDirectory) is checked, whoever made the archive", () => {
  it.each([
    ["a symlink to /tmp", [symlink("lnk", "/tmp"), file("lnk/x")], "absolute"],
    ["a file under a symlink", [symlink("lnk", "."), file("lnk/x")], "under the symlink lnk"],
    ["a name with ..", [file("../x")], ".. component"],
    ["a symlink that climbs out of the job's files", [symlink("up", "..")], "points outside"],
  ] as [string, Entry[], string][])("%s", async (_label, entries, why) => {
    const err = await refusal(underDirectory(await tarOf(entries), "job/up-1"));
    expect(err.message).toContain(why);
  });

  it("takes an archive that lists its root as . and names as ./x, as `tar -C dir .` and tar-fs do", async () => {
    const files = await tarFiles(underDirectory(await tarOf([dir("."), file("./a.txt", "a"), symlink("./l", "a.txt")]), "job/up-1"));
    expect([...files.keys()]).toEqual(["job/up-1/.", "job/up-1/a.txt", "job/up-1/l"]);
    const dotted = await tarFiles(underDirectory(await tarOf([file(".//sub/./a.txt", "a")]), "job/up-1"));
    expect([...dotted.keys()]).toEqual(["job/up-1/sub/a.txt"]);
  });

  it("refuses a . that is not a directory", async () => {
    const err = await refusal(underDirectory(await tarOf([symlink(".", "a")]), "job/up-1"));
    expect(err.message).toContain("its path is empty");
  });

  it("puts a normal archive's entries, and its hard link targets, under the directory", async () => {
    const entries = [file("a.txt", "a"), dir("d/"), symlink("d/up", "../a.txt"), hardlink("h", "a.txt")];
    const out = underDirectory(await tarOf(entries), "job/up-1");
    const headers: tar.Header[] = [];
    const extract = tar.extract();
    out.pipe(extract);
    for await (const entry of extract) {
      headers.push(entry.header);
      entry.resume();
    }
    expect(headers.map((h) => [h.name, h.type, h.linkname ?? null])).toEqual([
      ["job/up-1/a.txt", "file", null],
      ["job/up-1/d/", "directory", null],
      ["job/up-1/d/up", "symlink", "../a.txt"],
      ["job/up-1/h", "link", "job/up-1/a.txt"],
    ]);
  });
});

describe("a refused archive reaches the engine's upload as the refusal", () => {
  it("putArchive rejects with the BadInputError, not a retryable socket error", async () => {
    // Stands in for the engine's PUT /containers/{id}/archive: it reads whatever comes.
    const engine = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200);
        res.end();
      });
    });
    await new Promise<void>((resolve) => engine.listen(0, "127.0.0.1", resolve));
    try {
      const docker = new Dockerode({ host: "127.0.0.1", port: (engine.address() as AddressInfo).port, protocol: "http" });
      const big = "x".repeat(200_000);
      const archive = await tarOf([file("ok.txt", big), symlink("lnk", "/var/run"), file("lnk/docker.sock")]);
      const err = await docker
        .getContainer("hoist-agent")
        .putArchive(underDirectory(archive, "job/up-1"), { path: "/jobs" })
        .then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(BadInputError);
      expect(classify(err).retryable).toBe(false);
      expect((err as Error).message).toContain('"lnk"');
    } finally {
      engine.closeAllConnections();
      await new Promise((resolve) => engine.close(resolve));
    }
  });
});
