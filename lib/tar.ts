import { PassThrough, pipeline, Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { createGunzip } from "node:zlib";
import tar from "tar-stream";

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
 */
export function stripFirstComponent(gzipOrTar: Readable): Readable {
  return renameEntries(gzipOrTar, strip);
}

/** Puts every entry under `dir/` (for an upload whose target directory does not exist yet). */
export function underDirectory(tarStream: Readable, dir: string): Readable {
  return renameEntries(tarStream, (name) => `${dir}/${name}`);
}

/**
 * Re-packs a (possibly gzipped) tar with each entry renamed; entries renamed to undefined
 * are dropped. The result is an uncompressed tar stream.
 */
export function renameEntries(gzipOrTar: Readable, rename: (name: string) => string | undefined): Readable {
  const extract = tar.extract();
  const pack = tar.pack();
  const out = new PassThrough();

  extract.on("entry", (header, body, next) => {
    // The reader went away: stop reading the source rather than pack into the void.
    if (out.destroyed) return extract.destroy();
    const name = rename(header.name);
    if (name === undefined) {
      body.on("end", next).resume();
      return;
    }
    // Hard link targets are archive paths too; symlink targets are relative and stay.
    const linkname = header.type === "link" && header.linkname ? rename(header.linkname) : header.linkname;
    const entry = pack.entry(
      {
        name,
        type: header.type,
        mode: header.mode,
        mtime: header.mtime,
        size: header.size,
        linkname,
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
