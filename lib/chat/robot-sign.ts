import { hmacSha256, toBase64, utf8 } from "./hmac.ts";

/**
 * How the group robots' webhooks check that a message comes from whoever holds the robot's
 * secret. The two vendors key the HMAC differently, which is easy to get wrong:
 *
 * - DingTalk (open.dingtalk.com, custom robot "加签"): HMAC-SHA256 with the secret as key over
 *   `<timestamp ms>\n<secret>`, base64, URL-encoded, sent as `&timestamp=..&sign=..` on the URL.
 * - Feishu/Lark (open.feishu.cn, custom bot "签名校验"): HMAC-SHA256 keyed by
 *   `<timestamp s>\n<secret>` over an empty message, base64, sent as `timestamp` and `sign` in
 *   the JSON body.
 *
 * WeCom's group robot has no signature: its key is in the webhook URL.
 */

/** DingTalk's `sign` before URL encoding. */
export async function dingTalkSign(secret: string, timestampMs: number): Promise<string> {
  return toBase64(await hmacSha256(secret, `${timestampMs}\n${secret}`));
}

/** The DingTalk webhook URL with `timestamp` and `sign` appended (DingTalk accepts them for an hour). */
export async function dingTalkSignedUrl(webhook: string, secret: string, timestampMs: number): Promise<string> {
  const url = new URL(webhook);
  url.searchParams.set("timestamp", String(timestampMs));
  // URLSearchParams encodes base64's + / = as %2B %2F %3D, as DingTalk's urlEncode step asks.
  url.searchParams.set("sign", await dingTalkSign(secret, timestampMs));
  return url.toString();
}

/** Feishu's `sign` for a body stamped with `timestampSec`. */
export async function feishuSign(secret: string, timestampSec: number): Promise<string> {
  return toBase64(await hmacSha256(utf8(`${timestampSec}\n${secret}`), new Uint8Array(0)));
}
