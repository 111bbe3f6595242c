/**
 * Splits the frames of a non-TTY container's log or exec stream: each frame is an 8-byte
 * header (stream type: 1 stdout, 2 stderr; 3 zero bytes; big-endian length) and its payload.
 * https://docs.docker.com/engine/api/v1.41/#operation/ContainerAttach
 */
export function demuxStreams(buf: Buffer): { stdout: string; stderr: string; all: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const all: Buffer[] = [];
  let at = 0;
  while (at + 8 <= buf.length) {
    const type = buf[at] ?? 0xff;
    // Not a frame header: a TTY container's log is the raw text.
    if (type > 2 || buf[at + 1] !== 0 || buf[at + 2] !== 0 || buf[at + 3] !== 0) {
      const text = buf.toString("utf8");
      return { stdout: text, stderr: "", all: text };
    }
    const size = buf.readUInt32BE(at + 4);
    const payload = buf.subarray(at + 8, at + 8 + size);
    (type === 2 ? err : out).push(payload);
    all.push(payload);
    at += 8 + size;
  }
  const text = (parts: Buffer[]) => Buffer.concat(parts).toString("utf8");
  return { stdout: text(out), stderr: text(err), all: text(all) };
}

/** Both streams joined, in order. */
export function demux(buf: Buffer): string {
  return demuxStreams(buf).all;
}
