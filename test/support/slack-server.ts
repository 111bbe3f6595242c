import { createServer } from "node:http";
import { listenLocal } from "./listen.ts";
import { text as readBody } from "node:stream/consumers";

/**
 * A stand-in for Slack's Web API (https://api.slack.com/web) and its response_url webhooks, for
 * the calls Hoist makes. It records each request as Slack receives it: the method path
 * (`/api/chat.postMessage`), the headers (Authorization carries the bot token), and the
 * arguments, form-encoded as @slack/web-api sends them (objects such as `blocks` are JSON in a
 * field) or JSON. It answers as Slack documents: chat.postMessage and chat.update with
 * `{ok: true, channel, ts, message}`, a response_url post with `ok`.
 *
 * `failNext` makes the next calls of a method fail: Slack's `{ok: false, error}` with HTTP 200,
 * or an HTTP status.
 */

export interface SlackCall {
  /** `/api/chat.postMessage`, or `/response/<id>` for a response_url post. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The arguments, with form fields that hold JSON (blocks) parsed. */
  args: Record<string, unknown>;
  /** When it came (Date.now()). */
  at: number;
}

export interface SlackFault {
  /** `{ok: false, error}` with HTTP 200, as Slack answers a refused call. */
  error?: string;
  /** An HTTP status instead (500, 503). */
  status?: number;
  /** Never answer: the client's timeout must end the call. */
  hang?: boolean;
}

export interface SlackServer {
  /** The Web API base, as SLACK_API_URL: `http://127.0.0.1:<port>/api/`. */
  apiUrl: string;
  /** A response_url on this server, as Slack puts one in each interactivity payload. */
  responseUrl(id: string): string;
  calls: SlackCall[];
  /** Calls to one Web API method (`chat.update`) or to response URLs (`response`). */
  callsTo(method: string): SlackCall[];
  failNext(method: string, n: number, fault: SlackFault): void;
  /** The email users.info gives for `user` (the workspace's verified address). */
  setEmail(user: string, email: string): void;
  close(): Promise<void>;
}

/** The bot token the server accepts unless told another; any other answers `invalid_auth`. */
export const SLACK_TEST_TOKEN = "xoxb-test-token";

export async function startSlackServer(token = SLACK_TEST_TOKEN): Promise<SlackServer> {
  const calls: SlackCall[] = [];
  const faults = new Map<string, { n: number; fault: SlackFault }>();
  let seq = 0;
  const emails = new Map<string, string>();

  const server = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const args = parseArgs(req.headers["content-type"], await readBody(req));
    calls.push({ path, headers: { ...req.headers }, args, at: Date.now() });
    const method = path.startsWith("/api/") ? path.slice("/api/".length) : "response";
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain" : "application/json; charset=utf-8" });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    };
    const planned = faults.get(method);
    if (planned && planned.n > 0) {
      planned.n--;
      if (planned.fault.hang) return;
      if (planned.fault.status) return answer(planned.fault.status, method === "response" ? "server_error" : { ok: false, error: "internal_error" });
      return answer(200, method === "response" ? planned.fault.error ?? "invalid_payload" : { ok: false, error: planned.fault.error ?? "invalid_arguments" });
    }
    if (method === "response") return answer(200, "ok");
    if (req.headers.authorization !== `Bearer ${token}`) return answer(200, { ok: false, error: "invalid_auth" });
    const channel = String(args.channel ?? "");
    switch (method) {
      case "chat.postMessage": {
        const ts = `1700000000.${String(++seq).padStart(6, "0")}`;
        return answer(200, { ok: true, channel, ts, message: { type: "message", text: args.text, blocks: args.blocks, ts, bot_id: "B0123456789" } });
      }
      case "chat.update":
        return answer(200, { ok: true, channel, ts: args.ts, text: args.text, message: { text: args.text, blocks: args.blocks } });
      case "users.info": {
        // https://api.slack.com/methods/users.info: the profile's email only with users:read.email.
        const user = String(args.user ?? "");
        const email = emails.get(user);
        return answer(200, email ? { ok: true, user: { id: user, name: user.toLowerCase(), profile: { email } } } : { ok: false, error: "user_not_found" });
      }
      default:
        return answer(200, { ok: false, error: "unknown_method" });
    }
  });
  const listening = await listenLocal(server);
  const base = listening.url;

  return {
    apiUrl: `${base}/api/`,
    responseUrl: (id) => `${base}/response/${id}`,
    calls,
    callsTo: (method) => calls.filter((c) => (method === "response" ? c.path.startsWith("/response/") : c.path === `/api/${method}`)),
    failNext: (method, n, fault) => void faults.set(method, { n, fault }),
    setEmail: (user, email) => void emails.set(user, email),
    close: listening.close,
  };
}


function parseArgs(contentType: string | undefined, body: string): Record<string, unknown> {
  if (contentType?.startsWith("application/json")) return JSON.parse(body) as Record<string, unknown>;
  const args: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) args[key] = /^[[{]/.test(value) ? JSON.parse(value) : value;
  return args;
}
