import { sha256 as sha256Of } from "@noble/hashes/sha2.js";

/**
 * Run ids for pushes are derived from the delivery, so a redelivered webhook maps to the
 * same run and one conditional write both deduplicates and creates it.
 */
export function deliveryRunId(provider: string, delivery: string, pipeline: string): string {
  return `r${base32(sha256(`${provider}\n${delivery}\n${pipeline}`).subarray(0, 15))}`;
}

/** Hoist's id of a provider's delivery: one per (provider, delivery), safe in a key and a URL. */
export function deliveryId(provider: string, delivery: string): string {
  return `d${base32(sha256(`${provider}\n${delivery}`).subarray(0, 15))}`;
}

/**
 * SHA-256 of a text's UTF-8, synchronously and without Node: the webhook also runs as a
 * Cloudflare Worker (functions/edge.ts), where node:crypto is not, and WebCrypto's digest
 * would make every id a promise.
 */
function sha256(text: string): Uint8Array {
  return sha256Of(new TextEncoder().encode(text));
}

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford's, lower case: no i l o u

function base32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/**
 * A manual run's id, from the caller's Idempotency-Key when it sends one: a retried request
 * finds the run the first one made.
 */
export function manualRunId(repo: string, pipeline: string, key: string): string {
  return `r${base32(sha256(`manual\n${repo}\n${pipeline}\n${key}`).subarray(0, 15))}`;
}

/**
 * A scheduled run's id, one per (repository, schedule, slot): a slot claimed by a tick that
 * crashed before the run existed is started again by the next tick under the same id, so one
 * conditional write still creates it once. `schedule` is its registry key (lib/store/schedules.ts),
 * which names the branch, the pipeline and the pattern.
 */
export function scheduleRunId(repo: string, schedule: string, slot: number): string {
  return `r${base32(sha256(`schedule\n${repo}\n${schedule}\n${slot}`).subarray(0, 15))}`;
}
