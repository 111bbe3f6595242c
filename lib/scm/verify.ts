/**
 * Webhook authenticity checks. This module runs on Node, AWS Lambda and Cloudflare
 * Workers, so it uses only Web-standard APIs (crypto.subtle, TextEncoder).
 */

const encoder = new TextEncoder();
const HMAC_SHA256 = { name: "HMAC", hash: "SHA-256" } as const;
const GITHUB_PREFIX = "sha256=";
// Secrets come from configuration, so the cache stays small; the cap only guards
// against a caller that passes a fresh secret on every request.
const MAX_CACHED_KEYS = 64;

const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    if (keyCache.size >= MAX_CACHED_KEYS) keyCache.clear();
    key = crypto.subtle.importKey("raw", encoder.encode(secret), HMAC_SHA256, false, ["sign", "verify"]);
    // A failed import must not poison the cache for later calls.
    key.catch(() => keyCache.delete(secret));
    keyCache.set(secret, key);
  }
  return key;
}

function bytes(body: Uint8Array | string): Uint8Array<ArrayBuffer> {
  if (typeof body === "string") return encoder.encode(body);
  // WebCrypto refuses views over a SharedArrayBuffer; copy only in that case.
  return body.buffer instanceof ArrayBuffer ? (body as Uint8Array<ArrayBuffer>) : new Uint8Array(body);
}

function decodeHex(hex: string): Uint8Array<ArrayBuffer> | undefined {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** `sha256=<hex>` as GitHub sends it in X-Hub-Signature-256. */
export async function signGitHub(body: Uint8Array | string, secret: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), bytes(body));
  return GITHUB_PREFIX + toHex(mac);
}

/**
 * True when `header` is a valid X-Hub-Signature-256 of `rawBody` under any of
 * `secrets` (several are accepted so a secret can be rotated without downtime).
 * Never throws on bad input: a malformed header is simply not a valid signature.
 */
export async function verifyGitHubSignature(
  rawBody: Uint8Array | string,
  header: string | null | undefined,
  secrets: readonly string[],
): Promise<boolean> {
  if (!header || !header.startsWith(GITHUB_PREFIX)) return false;
  const signature = decodeHex(header.slice(GITHUB_PREFIX.length));
  if (!signature || signature.length !== 32) return false;
  const body = bytes(rawBody);
  for (const secret of secrets) {
    // An empty secret would let anyone who guesses that configuration mistake sign.
    if (!secret) continue;
    // subtle.verify recomputes the MAC and compares in constant time, unlike a
    // string comparison of hex digests, which leaks the matching prefix length.
    if (await crypto.subtle.verify("HMAC", await hmacKey(secret), signature, body)) return true;
  }
  return false;
}

let tokenKey: Promise<CryptoKey> | undefined;

/**
 * The key is random and per process: nobody outside can predict the MACs, and it is
 * made lazily because Workers forbid generating randomness at module load.
 */
function gitLabTokenKey(): Promise<CryptoKey> {
  tokenKey ??= crypto.subtle.importKey("raw", crypto.getRandomValues(new Uint8Array(32)), HMAC_SHA256, false, [
    "sign",
    "verify",
  ]);
  return tokenKey;
}

/**
 * True when the X-Gitlab-Token header equals one of `tokens`.
 *
 * GitLab sends the shared token in clear, so there is nothing to recompute; the risk
 * is a comparison whose timing reveals how much of a guess matched. We MAC the
 * configured token under a random key and let subtle.verify compare it with the
 * header's MAC: both are fixed-length digests compared in constant time, so neither
 * the token's content nor its length leaks. A hand-written XOR loop would work too,
 * but the JIT gives no constant-time guarantee for it; WebCrypto documents one.
 */
export async function verifyGitLabToken(header: string | null | undefined, tokens: readonly string[]): Promise<boolean> {
  if (!header) return false;
  const key = await gitLabTokenKey();
  const presented = encoder.encode(header);
  for (const token of tokens) {
    if (!token) continue;
    const expected = await crypto.subtle.sign("HMAC", key, encoder.encode(token));
    if (await crypto.subtle.verify("HMAC", key, expected, presented)) return true;
  }
  return false;
}
