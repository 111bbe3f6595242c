import { connect, isIP, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { RouterError, type Router, type RouterServer, type ServerAdminState, type ServerStats } from "./port.ts";

/**
 * The Router port over HAProxy's runtime API (the `stats socket ... level admin` of its
 * global section), so servers come and go without a reload. Written against HAProxy 2.6,
 * where dynamic servers need no `experimental-mode`.
 *
 * The protocol is hand-written on purpose: it is one text line out and text until the peer
 * closes, and no maintained npm client covers dynamic servers (`add server`/`del server`).
 */

export type RuntimeAddress = { socket: string } | { host: string; port: number };

export interface HaproxyRouterOptions {
  /**
   * How long removeServer lets requests already on a server finish (the server is in maint,
   * so no new ones arrive) before it cuts them with `shutdown sessions`, and how long it then
   * waits for HAProxy to let go of the connections. Default 10 s.
   */
  drainTimeoutMs?: number;
  /** Per command; HAProxy answers in milliseconds, so a silent one is stuck. Default 5 s. */
  commandTimeoutMs?: number;
}

/** `unix:/path` or `host:port`, for messages. */
export function describeAddress(address: RuntimeAddress): string {
  return "socket" in address ? `unix:${address.socket}` : `${address.host}:${address.port}`;
}

/**
 * Sends one command on a fresh connection and resolves with HAProxy's whole answer. HAProxy's
 * non-interactive mode runs the first line it reads and then closes, so the close marks the
 * end of the answer (several commands can share the line, separated by `;`).
 */
export function runtimeCommand(address: RuntimeAddress, command: string, timeoutMs = 5_000): Promise<string> {
  const where = describeAddress(address);
  return new Promise((resolve, reject) => {
    const socket: Socket = "socket" in address ? connect({ path: address.socket }) : connect({ host: address.host, port: address.port });
    let connected = false;
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new RouterError(`HAProxy's runtime API at ${where} did not answer "${command}" within ${timeoutMs} ms: check that HAProxy is not overloaded or stopped`, { retryable: true }));
    });
    socket.on("connect", () => {
      connected = true;
      socket.write(`${command}\n`);
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      socket.destroy();
      reject(connected ? new RouterError(`the connection to HAProxy's runtime API at ${where} broke while it answered "${command}" (${err.code ?? err.message}): retry; if it persists, check HAProxy's log`, { cause: err, retryable: true }) : unreachable(address, err));
    });
  });
}

function unreachable(address: RuntimeAddress, err: NodeJS.ErrnoException): RouterError {
  const declared = "socket" in address ? address.socket : `ipv4@${address.host}:${address.port}`;
  return new RouterError(
    `cannot reach HAProxy's runtime API at ${describeAddress(address)} (${err.code ?? err.message}): check the environment's router setting and that HAProxy runs with "stats socket ${declared} level admin" in its global section`,
    { cause: err, retryable: true },
  );
}

// HAProxy names may hold letters, digits, '-', '_', '.' and ':'; anything else (a space, ';',
// a newline) would change the command line, so it is refused before anything is sent.
const NAME = /^[A-Za-z0-9_.:-]+$/;

// srv_admin_state bits (HAProxy's SRV_ADMF_*): 0x08 forced drain, 0x10 drain inherited from a
// tracked server; every other bit is one kind of maintenance (forced, inherited, configured, DNS).
const DRAIN_BITS = 0x18;

const DELETED = "Server deleted.";
const NO_SERVER = "No such server.";
const BUSY = "Server still has connections attached to it, cannot remove it.";

export class HaproxyRouter implements Router {
  private readonly where: string;
  private readonly drainTimeoutMs: number;
  private readonly commandTimeoutMs: number;

  constructor(
    private readonly address: RuntimeAddress,
    options: HaproxyRouterOptions = {},
  ) {
    this.where = describeAddress(address);
    this.drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 5_000;
  }

  async servers(backend: string): Promise<RouterServer[]> {
    checkName("backend", backend);
    const command = `show servers state ${backend}`;
    const answer = await this.run(command);
    // Answer: a format version line ("1"), a "# name name ..." header, one row per server.
    const lines = answer.split("\n").filter((line) => line.trim() !== "");
    const headerAt = lines.findIndex((line) => line.startsWith("# "));
    if (lines[0] !== "1" || headerAt !== 1) throw this.refused(command, answer, backend);
    const columns = (lines[1] ?? "").slice(2).split(" ");
    const rows = lines.slice(2).map((line) => record(columns, line.split(" ")));
    return rows.map((row) => {
      const addr = field(row, "srv_addr", command);
      const admin = Number(field(row, "srv_admin_state", command));
      return {
        name: field(row, "srv_name", command),
        // A server declared by host name (in the config) has no address until it resolves.
        address: addr !== "-" ? addr : field(row, "srv_fqdn", command),
        port: Number(field(row, "srv_port", command)),
        weight: Number(field(row, "srv_uweight", command)),
        state: admin === 0 ? "ready" : (admin & ~DRAIN_BITS) !== 0 ? "maint" : "drain",
      };
    });
  }

  async addServer(backend: string, server: { name: string; address: string; port: number; weight: number }): Promise<void> {
    checkName("backend", backend);
    checkName("server", server.name);
    // Without a resolvers section HAProxy 2.6 never resolves a dynamic server's host name: it
    // would sit in the backend with no address, failing every request sent to it.
    if (isIP(server.address) === 0) throw new RouterError(`server address "${server.address}" is not an IP address: give the container's IP (HAProxy does not resolve names of servers added at runtime)`);
    if (!Number.isInteger(server.port) || server.port < 1 || server.port > 65_535) throw new RouterError(`server port ${server.port} is not a TCP port (1-65535): give the port the container listens on`);
    checkWeight(server.weight);
    const command = `add server ${backend}/${server.name} ${server.address}:${server.port} weight ${server.weight}`;
    const answer = await this.run(command);
    // HAProxy adds it in maint: it gets traffic only once the caller sets it ready.
    if (answer === "New server registered.") return;
    if (answer === "Already exists a server with the same name in backend.") return;
    throw this.refused(command, answer, backend, server.name);
  }

  async setWeight(backend: string, name: string, weight: number): Promise<void> {
    checkWeight(weight);
    await this.silent(backend, name, `set server ${backend}/${name} weight ${weight}`, weight === 0);
  }

  async setState(backend: string, name: string, state: ServerAdminState): Promise<void> {
    await this.silent(backend, name, `set server ${backend}/${name} state ${state}`, state !== "ready");
  }

  /**
   * `del server` is refused while the server is not in maint or still holds connections
   * (active, idle or queued), and HAProxy 2.6 has no command to wait for that. So: maint (no
   * new requests), then retry the delete while what is in flight finishes. Whatever outlives
   * drainTimeoutMs is cut with `shutdown sessions` (callers drain first, so that is only a
   * stuck or long-lived request), then the delete is retried for another drainTimeoutMs while
   * HAProxy closes those connections.
   */
  async removeServer(backend: string, name: string): Promise<void> {
    checkName("backend", backend);
    checkName("server", name);
    const ref = `${backend}/${name}`;
    const maint = `set server ${ref} state maint`;
    const answer = await this.run(maint);
    if (answer === NO_SERVER) return;
    if (answer !== "") throw this.refused(maint, answer, backend, name);

    for (const cut of [false, true]) {
      if (cut) {
        const shutdown = `shutdown sessions server ${ref}`;
        const result = await this.run(shutdown);
        if (result === NO_SERVER) return;
        if (result !== "") throw this.refused(shutdown, result, backend, name);
      }
      const deadline = Date.now() + this.drainTimeoutMs;
      for (;;) {
        const del = `del server ${ref}`;
        const result = await this.run(del);
        if (result === DELETED || result === NO_SERVER) return;
        if (result !== BUSY) throw this.refused(del, result, backend, name);
        if (Date.now() > deadline) break;
        await sleep(100);
      }
    }
    throw new RouterError(`HAProxy still holds connections to ${ref} ${(2 * this.drainTimeoutMs) / 1000} s after it was put in maint and its sessions were shut down: it stays in maint (no traffic); call removeServer again later`);
  }

  async stats(backend: string): Promise<ServerStats[]> {
    checkName("backend", backend);
    // The whole table, filtered here: `show stat <proxy> ...` would read a numeric name as an id.
    const command = "show stat";
    const answer = await this.run(command);
    const lines = answer.split("\n").filter((line) => line.trim() !== "");
    const header = lines[0];
    if (header === undefined || !header.startsWith("# ")) throw this.refused(command, answer, backend);
    const columns = splitCsv(header.slice(2));
    const rows = lines.slice(1).map((line) => record(columns, splitCsv(line)));
    const mine = rows.filter((row) => row.get("pxname") === backend);
    if (!mine.some((row) => row.get("svname") === "BACKEND")) throw this.refused(command, "No such backend.", backend);
    const count = (row: Map<string, string>, column: string): number => Number(field(row, column, command) || 0);
    return mine
      .filter((row) => row.get("svname") !== "BACKEND" && row.get("svname") !== "FRONTEND")
      .map((row) => ({
        name: field(row, "svname", command),
        responses: ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].reduce((sum, column) => sum + count(row, column), 0),
        errors5xx: count(row, "hrsp_5xx"),
        failures: count(row, "econ") + count(row, "eresp"),
        sessions: count(row, "scur"),
      }));
  }

  async setRoutes(map: string, backend: string, routes: readonly { host: string; path: string }[]): Promise<void> {
    checkName("backend", backend);
    if (!/^\/[^\s]+$/.test(map)) throw new RouterError(`routes map "${map}" is not an absolute path: give the map file HAProxy's frontend reads`);
    const shown = await this.run(`show map ${map}`);
    // Rows: "0x55d0c2a3b8e0 shop.example.com/api web_be".
    const rows = shown.split("\n").filter((l) => l.trim() !== "");
    if (rows.some((l) => !/^0x[0-9a-f]+ \S+ \S+$/.test(l))) throw this.refused(`show map ${map}`, shown, backend);
    const others = rows.map((l) => l.split(" ")).filter(([, , value]) => value !== backend).map(([, key, value]) => ({ key: key!, value: value! }));
    const ours = routes.map((r) => ({ key: `${r.host}${r.path}`, value: backend }));
    const taken = ours.find((o) => others.some((x) => x.key === o.key));
    if (taken) throw new RouterError(`the route ${taken.key} already sends requests to backend "${others.find((x) => x.key === taken.key)!.value}": remove it from that app first`);
    // Longest first: the frontend takes the first entry the request's host and path begin with.
    const entries = [...others, ...ours].sort((a, b) => b.key.length - a.key.length || a.key.localeCompare(b.key));
    const prepared = /New version created: (\d+)/.exec(await this.run(`prepare map ${map}`));
    if (!prepared) throw new RouterError(`HAProxy at ${this.where} could not prepare a new version of ${map}: is it a map the frontend uses?`);
    const version = prepared[1];
    for (const e of entries) {
      const answer = await this.run(`add map @${version} ${map} ${e.key} ${e.value}`);
      if (answer !== "") throw this.refused(`add map @${version} ${map}`, answer, backend);
    }
    const committed = await this.run(`commit map @${version} ${map}`);
    if (committed !== "") throw this.refused(`commit map @${version} ${map}`, committed, backend);
  }

  /**
   * Runs a `set server` command, which answers nothing when it works. One that only takes the
   * server out of service (`takesOut`) is done when the server is gone.
   */
  private async silent(backend: string, name: string, command: string, takesOut: boolean): Promise<void> {
    checkName("backend", backend);
    checkName("server", name);
    const answer = await this.run(command);
    if (answer === "" || (takesOut && answer === NO_SERVER)) return;
    throw this.refused(command, answer, backend, name);
  }

  private async run(command: string): Promise<string> {
    return (await runtimeCommand(this.address, command, this.commandTimeoutMs)).trim();
  }

  /** Turns HAProxy's answer text to a failed command into what the caller should do about it. */
  private refused(command: string, answer: string, backend: string, name?: string): RouterError {
    const said = answer.split("\n")[0]?.trim() || "(no answer)";
    if (/No such backend|Can't find backend|No such proxy/i.test(said)) {
      return new RouterError(`HAProxy at ${this.where} has no backend "${backend}" (it said "${said}"): check the backend named in the environment's router setting against HAProxy's config`);
    }
    if (/No such server/i.test(said)) {
      return new RouterError(`backend "${backend}" of HAProxy at ${this.where} has no server "${name ?? "?"}" (it said "${said}"): add it first, or list the servers the backend has`);
    }
    if (/experimental-mode/i.test(said)) {
      return new RouterError(`HAProxy at ${this.where} wants experimental-mode for "${command}" (it said "${said}"): run HAProxy 2.6 or later, where dynamic servers are stable`);
    }
    if (/Permission denied/i.test(said)) {
      return new RouterError(`HAProxy at ${this.where} refused "${command}" (it said "${said}"): declare its stats socket with "level admin"`);
    }
    if (/Unknown command/i.test(said)) {
      return new RouterError(`HAProxy at ${this.where} does not know "${command}" (it said "${said}"): the router needs HAProxy 2.6 or later`);
    }
    return new RouterError(`HAProxy at ${this.where} refused "${command}": ${said}`);
  }
}

function checkName(kind: "backend" | "server", value: string): void {
  if (!NAME.test(value)) throw new RouterError(`${kind} name "${value}" is not a valid HAProxy name: use only letters, digits, '-', '_', '.' and ':'`);
}

function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 256) throw new RouterError(`weight ${weight} is out of HAProxy's range: give an integer from 0 (no new traffic) to 256`);
}

function record(columns: string[], values: string[]): Map<string, string> {
  return new Map(columns.map((column, i) => [column, values[i] ?? ""]));
}

function field(row: Map<string, string>, column: string, command: string): string {
  const value = row.get(column);
  if (value === undefined) throw new RouterError(`HAProxy's answer to "${command}" has no "${column}" column: the router needs HAProxy 2.6 or later`);
  return value;
}

/** One CSV line of `show stat`; HAProxy quotes a field only when it holds a comma or a quote. */
function splitCsv(line: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        current += '"';
        i++;
      } else if (c === '"') quoted = false;
      else current += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(current);
      current = "";
    } else current += c;
  }
  out.push(current);
  return out;
}
