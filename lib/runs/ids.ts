import { createHash } from "node:crypto";

/**
 * Run ids for pushes are derived from the delivery, so a redelivered webhook maps to the
 * same run and one conditional write both deduplicates and creates it.
 */
export function deliveryRunId(provider: string, delivery: string, pipeline: string): string {
  // node:crypto hashes synchronously; WebCrypto's digest costs a thread-pool round trip per id.
  const digest = createHash("sha256").update(`${provider}\n${delivery}\n${pipeline}`).digest();
  return `r${base32(digest.subarray(0, 15))}`;
}

/** Hoist's id of a provider's delivery: one per (provider, delivery), safe in a key and a URL. */
export function deliveryId(provider: string, delivery: string): string {
  const digest = createHash("sha256").update(`${provider}\n${delivery}`).digest();
  return `d${base32(digest.subarray(0, 15))}`;
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
  const digest = createHash("sha256").update(`manual\n${repo}\n${pipeline}\n${key}`).digest();
  return `r${base32(digest.subarray(0, 15))}`;
}

/**
 * A scheduled run's id, one per (repository, schedule, slot): a slot claimed by a tick that
 * crashed before the run existed is started again by the next tick under the same id, so one
 * conditional write still creates it once. `schedule` is its registry key (lib/store/schedules.ts),
 * which names the branch, the pipeline and the pattern.
 */
export function scheduleRunId(repo: string, schedule: string, slot: number): string {
  const digest = createHash("sha256").update(`schedule\n${repo}\n${schedule}\n${slot}`).digest();
  return `r${base32(digest.subarray(0, 15))}`;
}
