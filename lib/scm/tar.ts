import { PassThrough, pipeline, Readable, Transform, type TransformCallback } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { createGunzip, type Gunzip } from "node:zlib";
import tar from "tar-stream";

/** Passes a plain stream through and gunzips a gzip one, told apart by gzip's magic bytes. */
class MaybeGunzip extends Transform {
  private head: Buffer | undefined = Buffer.alloc(0);
  private gunzip: Gunzip | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.head) {
      this.head = Buffer.concat([this.head, chunk]);
      if (this.head.length < 2) return done();
      chunk = this.head;
      this.head = undefined;
      if (chunk[0] === 0x1f && chunk[1] === 0x8b) {
        this.gunzip = createGunzip();
        this.gunzip.on("data", (data: Buffer) => this.push(data));
        this.gunzip.on("error", (err) => this.destroy(err));
      }
    }
    if (this.gunzip) this.gunzip.write(chunk, () => done());
    else done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.head?.length) this.push(this.head);
    if (!this.gunzip) return done();
    this.gunzip.once("end", () => done());
    this.gunzip.end();
  }
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
  const extract = tar.extract();
  const pack = tar.pack();
  const out = new PassThrough();

  extract.on("entry", (header, body, next) => {
    // The reader went away: stop reading the source rather than pack into the void.
    if (out.destroyed) return extract.destroy();
    const name = strip(header.name);
    if (name === undefined) {
      body.on("end", next).resume();
      return;
    }
    // Hard link targets are archive paths too; symlink targets are relative and stay.
    const linkname = header.type === "link" && header.linkname ? strip(header.linkname) : header.linkname;
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
    body.pipe(entry);
  });
  extract.on("finish", () => {
    if (!out.destroyed) pack.finalize();
  });

  // A reader that stops early must not leave the source (often a socket) half read.
  out.once("close", () => extract.destroy());
  pipeline(gzipOrTar, new MaybeGunzip(), extract, (err) => {
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
