import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { haproxyBinary, haproxyConfig } from "../../lib/local/router.ts";
import { runtimeCommand } from "../../lib/router/haproxy.ts";
import { waitFor } from "./wait.ts";

export interface Haproxy {
  /** The frontend, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The admin-level runtime API socket. */
  socket: string;
  backend: string;
  /** With `shared`: every backend, and the routes map the frontend picks one from by host and path. */
  backends: string[];
  map?: string;
  stop(): Promise<void>;
}

/**
 * A private HAProxy in the foreground (-db) with an empty backend: tests add their servers at
 * runtime, as releases do. HAProxy 2.6 accepts a backend with no servers (it answers 503).
 */
export async function startHaproxy(opts: { backend?: string; shared?: string[] } = {}): Promise<Haproxy> {
  const bin = haproxyBinary();
  const backends = opts.shared ?? [opts.backend ?? "app"];
  const backend = backends[0]!;
  const dir = await mkdtemp(join(tmpdir(), "hoist-haproxy-"));
  const socket = join(dir, "admin.sock");
  const map = opts.shared ? join(dir, "routes.map") : undefined;
  if (map) await writeFile(map, "");
  const port = await freePort();
  const config = join(dir, "haproxy.cfg");
  // The routers' own config (lib/local/router.ts); shared: an unrouted request answers 404.
  await writeFile(config, haproxyConfig({ socket, port, backends, ...(map ? { map, unrouted: true } : {}) }));

  const child = spawn(bin, ["-f", config, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const spawnFailed = new Promise<Error>((resolve) => child.on("error", resolve));
  let running = true;
  void exited.then(() => (running = false));
  void spawnFailed.then(() => (running = false));

  const stop = async (): Promise<void> => {
    if (running) {
      child.kill("SIGTERM");
      // SIGTERM stops HAProxy at once; SIGKILL only if it hangs.
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  // Ready when the socket answers; an early exit (bad config, port taken) fails at once with
  // HAProxy's own words instead of waiting out the deadline.
  const failure = await Promise.race([
    waitFor("HAProxy's runtime API to answer `show info`", async () => !running || (await runtimeCommand({ socket }, "show info", 1_000)).includes("Name: HAProxy"), 15_000, 50).then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    ),
    exited.then((code) => new Error(`haproxy exited with ${code} before answering: ${output.trim()}`)),
    spawnFailed.then((err) => new Error(`${bin} could not start: ${err.message}`, { cause: err })),
  ]);
  if (failure) {
    await stop();
    throw failure;
  }
  return { url: `http://127.0.0.1:${port}`, socket, backend, backends, ...(map ? { map } : {}), stop };
}

/** A port nobody listens on now (HAProxy cannot report a port 0 bind back to us). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
