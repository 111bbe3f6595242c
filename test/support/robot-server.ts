import { createServer } from "node:http";
import { listenLocal } from "./listen.ts";
import { text as readBody } from "node:stream/consumers";
import type { RobotKind } from "../../lib/chat/robot-formats.ts";

/**
 * A stand-in for the group robots' webhooks: DingTalk (`/robot/send?access_token=..`), Feishu
 * (`/open-apis/bot/v2/hook/<id>`) and WeCom (`/cgi-bin/webhook/send?key=..`). It records each
 * post (path, query, JSON body) and answers as each vendor does, with HTTP 200 and a code of its
 * own: DingTalk and WeCom `{errcode: 0, errmsg: "ok"}`, Feishu `{code: 0, msg: "success", data: {}}`.
 * Signatures are not checked here: the tests check them against their own computation.
 *
 * `failNext` makes the next posts answer a vendor error code, or an HTTP status, or never.
 */

export interface RobotPost {
  kind: RobotKind;
  path: string;
  query: Record<string, string>;
  body: Record<string, unknown>;
  at: number;
}

export interface RobotFault {
  /** The vendor's error code, answered with HTTP 200 (DingTalk 310000 sign not match, WeCom 45009, Feishu 19021). */
  code?: number;
  /** An HTTP status instead. */
  status?: number;
  /** Never answer: the sender's deadline must end the call. */
  hang?: boolean;
}

export interface RobotServer {
  /** The webhook URL of one robot of `kind` on this server. */
  webhook(kind: RobotKind): string;
  posts: RobotPost[];
  failNext(n: number, fault: RobotFault): void;
  close(): Promise<void>;
}

const PATHS: { readonly [K in RobotKind]: string } = {
  dingtalk: "/robot/send?access_token=dt-access-token",
  feishu: "/open-apis/bot/v2/hook/fs-hook-id",
  wecom: "/cgi-bin/webhook/send?key=wc-key",
};

function kindOf(path: string): RobotKind | undefined {
  if (path === "/robot/send") return "dingtalk";
  if (path.startsWith("/open-apis/bot/v2/hook/")) return "feishu";
  if (path === "/cgi-bin/webhook/send") return "wecom";
  return undefined;
}

function answer(kind: RobotKind, code: number): Record<string, unknown> {
  if (kind === "feishu") return code === 0 ? { code: 0, msg: "success", data: {} } : { code, msg: "sign match fail or timestamp is not within one hour from current time", data: {} };
  return { errcode: code, errmsg: code === 0 ? "ok" : "refused" };
}

export async function startRobotServer(): Promise<RobotServer> {
  const posts: RobotPost[] = [];
  const faults: RobotFault[] = [];

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://robot");
    const kind = kindOf(url.pathname);
    const text = await readBody(req);
    if (!kind) {
      res.writeHead(404).end();
      return;
    }
    posts.push({ kind, path: url.pathname, query: Object.fromEntries(url.searchParams), body: JSON.parse(text) as Record<string, unknown>, at: Date.now() });
    const fault = faults.shift();
    if (fault?.hang) return;
    const reply = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (fault?.status) return reply(fault.status, { message: "server error" });
    reply(200, answer(kind, fault?.code ?? 0));
  });
  const listening = await listenLocal(server);
  const base = listening.url;

  return {
    webhook: (kind) => `${base}${PATHS[kind]}`,
    posts,
    failNext: (n, fault) => {
      for (let i = 0; i < n; i++) faults.push(fault);
    },
    close: listening.close,
  };
}
