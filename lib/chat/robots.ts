import * as z from "zod";
import { byStatus, classify, PermanentError, RetryableError, type HoistError } from "../errors.ts";
import { robotBodies, type RobotKind } from "./robot-formats.ts";
import type { RobotMessage } from "./robot-messages.ts";
import { dingTalkSignedUrl, feishuSign } from "./robot-sign.ts";

/**
 * Posts a RobotMessage to a group robot's webhook. The webhook URL carries the robot's
 * credential (DingTalk's access_token, WeCom's key, Feishu's hook id), so no error or log line
 * made here names it: errors say which vendor and what it answered.
 */

export const DEFAULT_ROBOT_TIMEOUT_MS = 10_000;

export interface SendRobotOptions {
  /** The deadline of each post, answer included. */
  timeoutMs?: number;
  /** Epoch ms: the timestamp the signature is made for. */
  now: number;
}

/**
 * The vendors answer HTTP 200 with a code of their own; these codes mean "too many messages"
 * or "busy", which passes: DingTalk 130101 (send too fast) and -1 (system busy), Feishu 11232
 * (rate limited), WeCom 45009 (api freq out of limit) and -1 (system busy).
 */
const RETRYABLE_CODES: { readonly [K in RobotKind]: ReadonlySet<number> } = {
  dingtalk: new Set([130101, -1]),
  feishu: new Set([11232]),
  wecom: new Set([45009, -1]),
};
/** The robots allow about 20 messages a minute: a throttled message is worth trying after one. */
const THROTTLED_RETRY_MS = 60_000;

// DingTalk and WeCom: {errcode, errmsg}; Feishu: {code, msg}, older deployments {StatusCode, StatusMessage}.
const Answer = z.object({
  errcode: z.number().optional(),
  errmsg: z.string().optional(),
  code: z.number().optional(),
  msg: z.string().optional(),
  StatusCode: z.number().optional(),
  StatusMessage: z.string().optional(),
});

/**
 * Sends `message` through the `kind` robot at `url`, signed with `secret` where the vendor
 * signs. Throws RetryableError for timeouts, 5xx and throttling, PermanentError otherwise.
 */
export async function sendRobot(kind: RobotKind, url: string, secret: string | undefined, message: RobotMessage, opts: SendRobotOptions): Promise<void> {
  for (const body of robotBodies(kind, message)) await post(kind, url, secret, body, opts);
}

async function post(kind: RobotKind, url: string, secret: string | undefined, body: Record<string, unknown>, opts: SendRobotOptions): Promise<void> {
  let target = url;
  let signed = body;
  if (secret && kind === "dingtalk") target = await dingTalkSignedUrl(url, secret, opts.now);
  if (secret && kind === "feishu") {
    const timestamp = Math.floor(opts.now / 1000);
    signed = { timestamp: String(timestamp), sign: await feishuSign(secret, timestamp), ...body };
  }
  let res: Response;
  let text: string;
  try {
    res = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify(signed),
      // A webhook that redirects is not the robot that was configured.
      redirect: "error",
      signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_ROBOT_TIMEOUT_MS),
    });
    text = await res.text();
  } catch (err) {
    throw sendFailed(kind, classify(err), [target, url]);
  }
  const answer = Answer.safeParse(parseJson(text));
  const code = answer.success ? (answer.data.errcode ?? answer.data.code ?? answer.data.StatusCode) : undefined;
  const said = answer.success ? (answer.data.errmsg ?? answer.data.msg ?? answer.data.StatusMessage ?? "") : "";
  if (code !== undefined && code !== 0) {
    const message = `the ${kind} robot refused the message: ${code} ${said.slice(0, 200)}`.trim();
    if (RETRYABLE_CODES[kind].has(code)) throw new RetryableError(message, { retryAfterMs: THROTTLED_RETRY_MS, context: { robot: kind, code } });
    if (res.status >= 500) throw new RetryableError(message, { context: { robot: kind, code } });
    throw new PermanentError(message, { context: { robot: kind, code } });
  }
  if (!res.ok) throw byStatus(res.status, `the ${kind} robot answered HTTP ${res.status}`, { context: { robot: kind } });
  if (code === undefined) throw new PermanentError(`the ${kind} robot answered without a result code: is the URL its webhook?`, { context: { robot: kind } });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The failure without the webhook URL, which fetch may quote, and without its cause, which may too. */
function sendFailed(kind: RobotKind, e: HoistError, urls: readonly string[]): HoistError {
  const said = urls.reduce((text, u) => text.split(u).join("<webhook>"), e.message);
  const message = `could not reach the ${kind} robot: ${said}`;
  return e.retryable ? new RetryableError(message, { context: { robot: kind } }) : new PermanentError(message, { context: { robot: kind } });
}
