import type { Readable } from "node:stream";
import tar from "tar-stream";

/** Every entry of a tar stream (or only its regular files), by name, with its content. */
export async function tarFiles(stream: Readable, opts: { filesOnly?: boolean } = {}): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const extract = tar.extract();
  // pipe() does not forward errors; without this a failed archive would hang the read.
  stream.on("error", (err) => extract.destroy(err));
  stream.pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (!opts.filesOnly || entry.header.type === "file") files.set(entry.header.name, Buffer.concat(chunks).toString("utf8"));
  }
  return files;
}
