import { PassThrough, pipeline, Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";
import { BadInputError } from "./errors.ts";

/**
 * Gunzips a gzip stream and passes a plain tar through, told apart by gzip's magic
 * bytes. A generator, so the pipeline's backpressure reaches the source.
 */
async function* maybeGunzip(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const chunks = source[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < 2) {
    const next = await chunks.next();
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
  }
  async function* whole(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
  }
  if (head[0] !== 0x1f || head[1] !== 0x8b) return yield* whole();
  const gunzip = createGunzip();
  pipeline(Readable.from(whole()), gunzip, (err) => {
    if (err) gunzip.destroy(err);
  });
  yield* gunzip;
}

/** `top/dir/file` → `dir/file`; undefined for the top-level entry itself. */
function strip(name: string): string | undefined {
  const slash = name.indexOf("/");
  if (slash < 0) return undefined;
  const rest = name.slice(slash + 1);
  return rest === "" ? undefined : rest;
}

/**
 * Re-packs a (possibly gzipped) tar whose entries all sit under one top-level
 * directory, as provider archives do (`owner-repo-sha/`), so that files are at the
 * archive root like `git archive` output. The result is an uncompressed tar stream.
 * An entry that could write outside the archive's root fails the stream (see ArchiveGuard).
 */
export function stripFirstComponent(gzipOrTar: Readable): Readable {
  return repack(gzipOrTar, strip, "");
}

/**
 * Puts every entry under `dir/` (for an upload whose target directory does not exist yet).
 * Every archive a job receives passes here, so here it is checked, whoever made it.
 */
export function underDirectory(tarStream: Readable, dir: string): Readable {
  return repack(tarStream, (name) => name, `${dir}/`);
}

const ENTRY_TYPES = new Set(["file", "contiguous-file", "directory", "symlink", "link"]);

/**
 * Refuses, as git refuses to check them out, the entries that could make an unpacker write
 * outside the directory the archive is unpacked in (the builder container holds the
 * engine's socket): a name that is absolute or has a `..` component, a name under a
 * symlink of the same archive (`top/lnk -> /tmp`, then `top/lnk/x`), a symlink whose
 * target is absolute or climbs above the root, a hard link to anything but a plain path
 * of the archive, and device or fifo entries, which git never makes.
 *
 * Names are relative to the archive's root. A symlink target may climb only with leading
 * `..` components, and at most to the root: every symlink then points inside the root, so
 * following any chain of them, in any order of the entries, stays inside.
 */
class ArchiveGuard {
  private readonly symlinks = new Set<string>();

  /**
   * Throws BadInputError naming the entry when it must not be unpacked; otherwise returns
   * its name, and a hard link's target, normalised (`./a//b` → `a/b`, `d` → `d/`, the root `.`), so
   * that what is written is what was checked.
   */
  check(header: Pick<tar.Header, "name" | "type" | "linkname">, name: string, linkname?: string): { name: string; linkname?: string } {
    if (!header.type || !ENTRY_TYPES.has(header.type)) refuse(header.name, `its type ${header.type ?? "unknown"} is not a file, directory or link`);
    const parts = pathParts(name, header.name);
    // `.` is the root itself, which archivers such as `tar -C dir .` list first.
    if (parts.length === 0 && header.type !== "directory") refuse(header.name, "its path is empty");
    const path = parts.join("/");
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (this.symlinks.has(prefix)) refuse(header.name, i < parts.length ? `it lies under the symlink ${prefix}` : "it replaces a symlink");
    }
    if (header.type === "link") {
      if (linkname === undefined) refuse(header.name, "its hard link target is outside the archive");
      const target = pathParts(linkname, header.name).join("/");
      if (target === "") refuse(header.name, "its hard link target is the root");
      for (const link of this.symlinks) if (target === link || target.startsWith(`${link}/`)) refuse(header.name, `its hard link target goes through the symlink ${link}`);
      return { name: path, linkname: target };
    }
    if (header.type === "symlink") {
      const target = header.linkname ?? "";
      if (target === "" || target.startsWith("/")) refuse(header.name, `its symlink target ${JSON.stringify(target)} is absolute or empty`);
      const steps = target.split("/").filter((p) => p !== "" && p !== ".");
      const up = steps.findIndex((p) => p !== "..");
      const climbs = up < 0 ? steps.length : up;
      if (steps.slice(climbs).includes("..")) refuse(header.name, `its symlink target ${JSON.stringify(target)} has a .. after a name`);
      if (climbs > parts.length - 1) refuse(header.name, `its symlink target ${JSON.stringify(target)} points outside the archive`);
      this.symlinks.add(path);
    }
    // Directories keep tar's trailing slash.
    return { name: path === "" ? "." : header.type === "directory" ? `${path}/` : path };
  }
}

/** The components of an archive path, refusing absolute ones and `..`. */
function pathParts(path: string, entry: string): string[] {
  if (path.startsWith("/")) refuse(entry, `the path ${JSON.stringify(path)} is absolute`);
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) refuse(entry, `the path ${JSON.stringify(path)} has a .. component`);
  return parts;
}

function refuse(entry: string, why: string): never {
  throw new BadInputError(`the archive entry ${JSON.stringify(entry)} is refused: ${why}`, { context: { entry } });
}

/**
 * Re-packs a (possibly gzipped) tar, each entry renamed by `toRelative` (undefined drops
 * it) to a name relative to the root the archive is unpacked in, checked by an
 * ArchiveGuard there, then put under `prefix`. The result is an uncompressed tar stream;
 * a refused entry fails it with the guard's BadInputError.
 */
function repack(gzipOrTar: Readable, toRelative: (name: string) => string | undefined, prefix: string): Readable {
  const extract = tar.extract();
  const pack = tar.pack();
  const out = new PassThrough();
  const guard = new ArchiveGuard();

  extract.on("entry", (header, body, next) => {
    // The reader went away: stop reading the source rather than pack into the void.
    if (out.destroyed) return extract.destroy();
    let checked: { name: string; linkname?: string } | undefined;
    try {
      // The raw names are checked too: stripping must not make `/x` or `../top/x` look safe.
      pathParts(header.name, header.name);
      if (header.type === "link") pathParts(header.linkname ?? "", header.name);
      const name = toRelative(header.name);
      // Hard link targets are archive paths too; symlink targets are relative and stay.
      const linkname = header.type === "link" && header.linkname ? toRelative(header.linkname) : undefined;
      checked = name === undefined ? undefined : guard.check(header, name, linkname);
    } catch (err) {
      // The refusal is reported once, through the pipeline; the entry's own stream fails
      // with it too when the extract is torn down, and nobody reads that stream.
      body.on("error", () => undefined);
      return extract.destroy(err as Error);
    }
    if (checked === undefined) {
      body.on("end", next).resume();
      return;
    }
    const entry = pack.entry(
      {
        name: prefix + checked.name,
        type: header.type,
        mode: header.mode,
        mtime: header.mtime,
        size: header.size,
        linkname: checked.linkname === undefined ? header.linkname : prefix + checked.linkname,
        uid: header.uid,
        gid: header.gid,
        uname: header.uname,
        gname: header.gname,
      },
      next,
    );
    // The entry fails when the pack is torn down (the reader left); end the read too.
    entry.on("error", (err: Error) => extract.destroy(err));
    body.pipe(entry);
  });
  extract.on("finish", () => {
    if (!out.destroyed) pack.finalize();
  });

  // A reader that stops early must not leave the source (often a socket) half read.
  out.once("close", () => extract.destroy());
  pipeline(gzipOrTar, maybeGunzip, extract, (err) => {
    if (err) out.destroy(err);
  });
  pipeline(pack, out, (err) => {
    if (err) out.destroy(err);
  });
  return out;
}

/**
 * A fetch response body as a Node stream. HTTP clients type it as the DOM
 * ReadableStream, which TypeScript will not equate with node:stream/web's, so the
 * shape is checked at run time instead of cast blindly.
 */
export function fromWebBody(body: unknown, what: string): Readable {
  if (typeof (body as { getReader?: unknown } | null)?.getReader !== "function") {
    throw new Error(`${what}: the response had no body stream`);
  }
  return Readable.fromWeb(body as WebReadableStream<Uint8Array>);
}
