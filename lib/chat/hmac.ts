/**
 * HMAC-SHA256 and the encodings chat signatures are written in. Web-standard APIs only
 * (crypto.subtle, btoa, TextEncoder), so Slack requests and approval links verify on
 * Cloudflare Workers too. Comparing a presented MAC with the expected one is
 * verifyGitLabToken's constant-time comparison (lib/scm/verify.ts), not a second copy.
 */

const encoder = new TextEncoder();
const HMAC_SHA256 = { name: "HMAC", hash: "SHA-256" } as const;

export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text);
}

/** HMAC-SHA256 of `message` under `key`; both taken as UTF-8 when text. */
export async function hmacSha256(key: string | Uint8Array<ArrayBuffer>, message: string | Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const raw = typeof key === "string" ? utf8(key) : key;
  // WebCrypto refuses a zero-length HMAC key; Feishu's and DingTalk's keys never are, an unset secret would be.
  if (raw.length === 0) throw new Error("an HMAC key must not be empty");
  const cryptoKey = await crypto.subtle.importKey("raw", raw, HMAC_SHA256, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, typeof message === "string" ? utf8(message) : message));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** RFC 4648 §5, unpadded: safe in a URL path segment. */
export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of unpadded base64url text; undefined when it is not that. */
export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
