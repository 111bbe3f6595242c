import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { delimiter, join, resolve } from "node:path";
import { processEnv } from "../config.ts";
import { runtimeCommand } from "../router/haproxy.ts";

/**
 * The local machine's router: one HAProxy on 127.0.0.1:<port> (8000 by default) in front of the
 * `local` environment, started once and shared by whoever runs Hoist from this directory
 * (`scripts/start.sh`, `hoist demo`). Its backend takes servers at runtime; its routes map takes
 * apps' `x-hoist.routes`. Left running when Hoist stops, like the Docker engine.
 */

export interface LocalRouter {
  /** The runtime API, as an environment names it. */
  admin: string;
  backend: string;
  map: string;
  url: string;
}

const BACKEND = "local";

export async function ensureLocalRouter(dir: string, port: number): Promise<LocalRouter> {
  // One router per port: a directory's router on another port is another router.
  const home = resolve(dir, String(port));
  const socket = join(home, "haproxy.sock");
  const map = join(home, "routes.map");
  const router = { admin: `unix://${socket}`, backend: BACKEND, map, url: `http://127.0.0.1:${port}` };
  if (await answers(socket)) return router;
  await mkdir(home, { recursive: true });
  const config = join(home, "haproxy.cfg");
  if (!existsSync(map)) await writeFile(map, "");
  await writeFile(config, haproxyConfig({ socket, port, backends: [BACKEND], map }));
  const bin = haproxyBinary();
  const out = await new Promise<{ code: number | null; text: string }>((done) => {
    const child = spawn(bin, ["-D", "-p", join(home, "haproxy.pid"), "-f", config], { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (d: Buffer) => (text += d));
    child.stderr.on("data", (d: Buffer) => (text += d));
    child.on("error", (err) => done({ code: -1, text: err.message }));
    child.on("exit", (code) => done({ code, text }));
  });
  if (out.code !== 0) throw new Error(`the local router (HAProxy on 127.0.0.1:${port}) did not start: ${out.text.trim()}`);
  for (let i = 0; i < 50 && !(await answers(socket)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await answers(socket))) throw new Error(`the local router (HAProxy on 127.0.0.1:${port}) does not answer on ${socket}`);
  return router;
}

/**
 * An HAProxy config for Hoist's routers: the runtime API at `socket` (admin level, which adding
 * servers at runtime needs), a frontend on 127.0.0.1:`port`, and `backends` that take their
 * servers at runtime. With a routes map, the frontend picks the backend by host (without a
 * port) and path, longest prefix first (README, Apps: Routes); a request no route matches goes
 * to the first backend, or, with `unrouted`, answers 404. Requests cut off by a server leaving
 * are retried on another.
 */
export function haproxyConfig(opts: { socket: string; port: number; backends: string[]; map?: string; unrouted?: boolean }): string {
  const { socket, port, backends, map, unrouted } = opts;
  return [
    "global",
    `  stats socket ${socket} level admin`,
    "defaults",
    "  mode http",
    "  timeout connect 2s",
    "  timeout client 30s",
    "  timeout server 30s",
    "  retries 3",
    "  option redispatch 1",
    "  retry-on conn-failure empty-response junk-response",
    "frontend web",
    `  bind 127.0.0.1:${port}`,
    ...(map
      ? [
          "  http-request set-var(txn.hoist_path) path",
          "  http-request set-var(txn.hoist_route) req.hdr(host),field(1,:),lower,concat(,txn.hoist_path,)",
          `  use_backend %[var(txn.hoist_route),map_beg(${map})]`,
        ]
      : []),
    `  default_backend ${unrouted ? "unrouted" : backends[0]}`,
    ...(unrouted ? ["backend unrouted", '  http-request return status 404 content-type text/plain string "no route"'] : []),
    ...backends.flatMap((b) => [`backend ${b}`, "  balance roundrobin"]),
    "",
  ].join("\n");
}

async function answers(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return false;
  return runtimeCommand({ socket }, "show info", 1_000).then(
    (info) => info.includes("Name: HAProxy"),
    () => false,
  );
}

/** The haproxy binary; Debian puts it in /usr/sbin, which a non-root PATH often lacks. */
export function haproxyBinary(): string {
  const dirs = [...(processEnv().PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
  const found = dirs.filter(Boolean).map((d) => join(d, "haproxy")).find((p) => existsSync(p));
  if (!found) throw new Error("haproxy is not installed: run bash scripts/install.sh (apt-get install haproxy)");
  return found;
}
