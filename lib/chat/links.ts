import * as z from "zod";
import { PermanentError } from "../errors.ts";
import { verifyGitLabToken } from "../scm/verify.ts";
import { fromBase64Url, hmacSha256, toBase64Url, utf8 } from "./hmac.ts";
import { RunId } from "../pipeline/names.ts";
import { MAX_STAGES } from "../pipeline/size.ts";

/**
 * One-click approval links for chat robots, which cannot call Hoist back the way Slack's
 * buttons do. A token is `base64url(JSON claims) "." base64url(HMAC-SHA256(HOIST_LINK_SECRET,
 * first part))`: the MAC covers the encoded claims exactly as sent, so nothing is re-serialised
 * to check it. The claims bind one run, stage, decision and approver until `exp`; the nonce
 * makes each link single-use (the route claims it once in the table).
 */

/** A link is a URL path segment in a chat message: far longer than this is not one of ours. */
export const MAX_TOKEN_CHARS = 1024;

export const LinkClaims = z
  .object({
    run: RunId,
    stage: z.number().int().min(0).max(MAX_STAGES - 1),
    decision: z.enum(["approve", "reject"]),
    /** Who the link decides as; "robot" when the rule names nobody. */
    approver: z.string().min(1).max(200),
    /** Epoch ms after which the link is refused. */
    exp: z.number().int().positive(),
    nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  })
  .strict();
export type LinkClaims = z.output<typeof LinkClaims>;

export type LinkRefusal = "malformed" | "forged" | "expired";
export type LinkCheck = { ok: true; claims: LinkClaims } | { ok: false; reason: LinkRefusal; message: string };

/** 16 random bytes, base64url: the link's single-use key. */
export function newNonce(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
}

async function mac(payload: string, secret: string): Promise<string> {
  return toBase64Url(await hmacSha256(secret, payload));
}

/** A token for `claims` under `secret`. */
export async function signLink(claims: LinkClaims, secret: string): Promise<string> {
  if (!secret) throw new PermanentError("approval links need HOIST_LINK_SECRET");
  const payload = toBase64Url(utf8(JSON.stringify(LinkClaims.parse(claims))));
  const token = `${payload}.${await mac(payload, secret)}`;
  // A claim set this large could only come from an approver name near its bound; refuse rather than send a link the route refuses.
  if (token.length > MAX_TOKEN_CHARS) throw new PermanentError(`an approval link would be ${token.length} characters, over ${MAX_TOKEN_CHARS}`);
  return token;
}

/**
 * The claims of a token signed with `secret` and not expired at `now` (epoch ms), or why not.
 * The MAC is checked, in constant time, before the claims are decoded.
 */
export async function verifyLink(token: string, secret: string, now: number): Promise<LinkCheck> {
  const malformed = (message: string): LinkCheck => ({ ok: false, reason: "malformed", message });
  if (token.length > MAX_TOKEN_CHARS) return malformed("the link is too long to be an approval link");
  const parts = token.split(".");
  if (parts.length !== 2 || !parts[0] || !parts[1] || !fromBase64Url(parts[1])) return malformed("the link is not an approval link");
  const [payload, signature] = parts as [string, string];
  if (!secret || !(await verifyGitLabToken(signature, [await mac(payload, secret)])))
    return { ok: false, reason: "forged", message: "the link's signature does not match: it was changed, or signed by another server" };
  const bytes = fromBase64Url(payload);
  let json: unknown;
  try {
    json = bytes ? JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) : undefined;
  } catch {
    json = undefined;
  }
  const claims = LinkClaims.safeParse(json);
  // Signed by us yet unreadable: a token from an incompatible version of Hoist.
  if (!claims.success) return malformed("the link was made by an incompatible version of Hoist");
  if (now >= claims.data.exp) return { ok: false, reason: "expired", message: `the link expired at ${new Date(claims.data.exp).toISOString()}` };
  return { ok: true, claims: claims.data };
}

/** Where a token is opened: `<publicUrl>/chat/approve/<token>`. */
export function linkUrl(publicUrl: string, token: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/chat/approve/${token}`;
}
