import { MAX_APPROVERS, MAX_DECISIONS } from "./approval.ts";

/**
 * Sizes that keep a run record under DynamoDB's 400 KB item limit. The record is stored as
 * its JSON, and DynamoDB counts UTF-8 bytes, so every measure here is of JSON text in UTF-8.
 * Long text (a command's output, an error that repeats a command) belongs in the stage log;
 * the record keeps a bounded head and tail of it.
 */

/** The most a run record's JSON may take: well under 400 KB, leaving room for the store's own attributes. */
export const RUN_BUDGET_BYTES = 300_000;

/** The most an error or a stop reason keeps. */
export const MAX_TEXT_BYTES = 8 * 1024;

/** The most each string a stage outputs (an image reference, a digest, a release id) keeps. */
export const MAX_OUTPUT_BYTES = 512;

/** Room kept for a run's own fields beside its stages: repository, ref, trigger, times. */
export const RUN_FIELDS_BYTES = 16 * 1024;

/** Stages a pipeline may have, and so a run. */
export const MAX_STAGES = 50;

/** What a stage's result may add to the record: its outputs, times, job name and keys (its error is counted per run). */
const STAGE_GROWTH_BYTES = 3 * MAX_OUTPUT_BYTES + 1024;

/**
 * What the run's own results may add: a failed stage's error and the run's copy of it, a stop
 * reason and the error of the stage it caught, the image and digest, times.
 */
const RUN_GROWTH_BYTES = 4 * MAX_TEXT_BYTES + 2 * MAX_OUTPUT_BYTES + 1024;

/** What a compose build's stages may add besides: each image's service and reference (bounded by MAX_BUILDS). */
const IMAGES_GROWTH_BYTES = 16 * (255 + MAX_OUTPUT_BYTES);

/** What a deploy stage's approval gate may add: its rule's approvers and every decision, each bounded. */
const GATE_GROWTH_BYTES = MAX_APPROVERS * 210 + MAX_DECISIONS * 1200 + 512;

/**
 * Room a new run must leave in the budget for what its events will add; `imageStages` of them
 * (a compose build and the pushes after it) record an image per service.
 */
export function growthRoom(stages: number, imageStages = 0, gatedStages = 0): number {
  return stages * STAGE_GROWTH_BYTES + imageStages * IMAGES_GROWTH_BYTES + gatedStages * GATE_GROWTH_BYTES + RUN_GROWTH_BYTES;
}

/** The bytes `value` takes as stored: its JSON in UTF-8. */
export function jsonBytes(value: unknown): number {
  return utf8Bytes(JSON.stringify(value) ?? "");
}

/**
 * `text` kept within `maxBytes` of JSON: its head and tail, with how much was cut between
 * them (the tail of an error is often the part that says what went wrong: an exit code).
 * Text that fits is returned as it is, so clipping twice changes nothing.
 */
export function clipText(text: string, maxBytes = MAX_TEXT_BYTES, where = "see the stage log"): string {
  const total = textBytes(text);
  if (total <= maxBytes) return text;
  const marker = (cut: number) => ` … (${cut} bytes cut; ${where}) … `;
  // The marker's own size depends on the count it shows: reserve for the largest it can be.
  const room = Math.max(0, maxBytes - textBytes(marker(total)));
  // A character takes at least one byte: the ends hold all that can be kept (whole pairs only).
  const headChars = Array.from(text.slice(0, room + 1).replace(/[\ud800-\udbff]$/, ""));
  const head = take(headChars, Math.ceil(room * 0.75));
  const rest = text.slice(head.join("").length);
  const tailChars = Array.from(rest.slice(-(room + 1)).replace(/^[\udc00-\udfff]/, "")).reverse();
  const tail = take(tailChars, room - bytesOf(head)).reverse();
  const kept = bytesOf(head) + bytesOf(tail);
  return `${head.join("")}${marker(total - kept)}${tail.join("")}`;
}

/** The leading characters of `chars` that fit in `maxBytes` of JSON. */
function take(chars: string[], maxBytes: number): string[] {
  let used = 0;
  let n = 0;
  for (const ch of chars) {
    const cost = charBytes(ch);
    if (used + cost > maxBytes) break;
    used += cost;
    n++;
  }
  return chars.slice(0, n);
}

function bytesOf(chars: string[]): number {
  return chars.reduce((sum, ch) => sum + charBytes(ch), 0);
}

/** The bytes `text` takes inside a JSON string (without its quotes). */
function textBytes(text: string): number {
  let n = 0;
  for (const ch of text) n += charBytes(ch);
  return n;
}

/** One code point's bytes inside a JSON string: escaped (`\"`, `\n`, `\u0001`) or UTF-8. */
function charBytes(ch: string): number {
  const code = ch.codePointAt(0) ?? 0;
  if (ch === '"' || ch === "\\") return 2;
  if (code < 0x20) return "\b\f\n\r\t".includes(ch) ? 2 : 6;
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  // A lone surrogate is written as \udXXX by JSON.stringify.
  if (code >= 0xd800 && code <= 0xdfff) return 6;
  return code < 0x10000 ? 3 : 4;
}

function utf8Bytes(s: string): number {
  return new TextEncoder().encode(s).length;
}
