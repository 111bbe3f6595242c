import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
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

const NOT_INSTALLED = "haproxy is not installed: run bash scripts/install.sh (apt-get install haproxy)";

/**
 * A private HAProxy in the foreground (-db) with an empty backend: tests add their servers at
 * runtime, as releases do. HAProxy 2.6 accepts a backend with no servers (it answers 503).
 */
export async function startHaproxy(opts: { backend?: string; shared?: string[] } = {}): Promise<Haproxy> {
  const bin = findHaproxy();
  const backends = opts.shared ?? [opts.backend ?? "app"];
  const backend = backends[0]!;
  const dir = await mkdtemp(join(tmpdir(), "hoist-haproxy-"));
  const socket = join(dir, "admin.sock");
  const map = opts.shared ? join(dir, "routes.map") : undefined;
  if (map) await writeFile(map, "");
  const port = await freePort();
  const config = join(dir, "haproxy.cfg");
  await writeFile(
    config,
    [
      "global",
      `  stats socket ${socket} level admin`,
      "defaults",
      "  mode http",
      "  timeout connect 2s",
      "  timeout client 30s",
      "  timeout server 30s",
      "  retries 3",
      // Retried requests go to another server, also when one was cut off mid-answer: what
      // carries requests through the moment Swarm stops a task (see README, Routing).
      "  option redispatch 1",
      "  retry-on conn-failure empty-response junk-response",
      "frontend web",
      `  bind 127.0.0.1:${port}`,
      // Shared: the backend by host (without a port) and path, from the routes map (README, Routing).
      ...(map
        ? [
            "  http-request set-var(txn.hoist_path) path",
            "  http-request set-var(txn.hoist_route) req.hdr(host),field(1,:),lower,concat(,txn.hoist_path,)",
            `  use_backend %[var(txn.hoist_route),map_beg(${map})]`,
            "  default_backend unrouted",
            "backend unrouted",
            '  http-request return status 404 content-type text/plain string "no route"',
          ]
        : [`  default_backend ${backend}`]),
      ...backends.flatMap((b) => [`backend ${b}`, "  balance roundrobin"]),
      "",
    ].join("\n"),
  );

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

/** The haproxy binary; Debian puts it in /usr/sbin, which a non-root PATH often lacks. */
function findHaproxy(): string {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
  const found = dirs.filter(Boolean).map((dir) => join(dir, "haproxy")).find((path) => existsSync(path));
  if (!found) throw new Error(NOT_INSTALLED);
  return found;
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
