import { verifyGitLabToken } from "../scm/verify.ts";
import { concatBytes, hmacSha256, toHex, utf8 } from "./hmac.ts";

/**
 * Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack):
 * X-Slack-Signature is `v0=` + hex HMAC-SHA256(signing secret, `v0:<X-Slack-Request-Timestamp>:<raw body>`).
 * Web-standard APIs only, so it runs on Workers as well as Node.
 */

/** Slack's advice: refuse requests whose timestamp is more than five minutes from now, either way. */
export const SLACK_MAX_SKEW_SEC = 5 * 60;
const VERSION = "v0";

export interface SlackSignatureHeaders {
  timestamp: string | null | undefined;
  signature: string | null | undefined;
}

export type SlackSignatureCheck = { ok: true } | { ok: false; reason: string };

/** `v0=<hex>` for `rawBody` sent at `timestamp` (epoch seconds, as text): what Slack puts in X-Slack-Signature. */
export async function signSlack(rawBody: Uint8Array<ArrayBuffer> | string, timestamp: string, secret: string): Promise<string> {
  const body = typeof rawBody === "string" ? utf8(rawBody) : rawBody;
  // The raw bytes, not a decoded string: a body that is not valid UTF-8 must not verify by being re-encoded.
  const base = concatBytes(utf8(`${VERSION}:${timestamp}:`), body);
  return `${VERSION}=${toHex(await hmacSha256(secret, base))}`;
}

/**
 * Whether a request carries a valid Slack signature under one of `secrets` (several, so one can
 * be rotated) and a timestamp within five minutes of `nowMs`. Never throws on bad input; the
 * reason says what was wrong without naming any secret.
 */
export async function verifySlackSignature(
  rawBody: Uint8Array<ArrayBuffer> | string,
  headers: SlackSignatureHeaders,
  secrets: readonly string[],
  nowMs: number,
): Promise<SlackSignatureCheck> {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature) return { ok: false, reason: "X-Slack-Request-Timestamp or X-Slack-Signature is missing" };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: "X-Slack-Request-Timestamp is not a number of seconds" };
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > SLACK_MAX_SKEW_SEC)
    return { ok: false, reason: `X-Slack-Request-Timestamp is more than ${SLACK_MAX_SKEW_SEC / 60} minutes from the server's clock (a replay, or a clock to fix)` };
  // Only well-formed signatures reach the comparison, so its cost does not depend on the input's length.
  if (!/^v0=[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: "X-Slack-Signature is not a v0 signature" };
  const live = secrets.filter((s) => s.length > 0);
  const expected = await Promise.all(live.map((secret) => signSlack(rawBody, timestamp, secret)));
  if (!(await verifyGitLabToken(signature, expected))) return { ok: false, reason: "X-Slack-Signature does not match the signing secret" };
  return { ok: true };
}
