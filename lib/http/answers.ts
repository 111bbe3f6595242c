import { classify, RetryableError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** An HTTP answer before any framework makes it a response: a status, a JSON body, extra headers. */
export interface Answer {
  status: number;
  body: object;
  headers?: Record<string, string>;
}

/** When an outage names no time, a client is told to come back after this long. */
const DEFAULT_RETRY_AFTER_SEC = 5;

/**
 * The answer to a thrown error, by the one error tree (lib/errors.ts): an outage is 503 with
 * Retry-After, bad input 400, a missing thing 404, a conflict 409. A body never carries a stack
 * or a secret; a fault of our own is logged and answered 500 without its details.
 */
export function errorAnswer(err: unknown, log: Logger): Answer {
  const e = classify(err);
  if (e.status >= 500 && !e.retryable) {
    log.error({ err }, "request failed");
    return { status: 500, body: { error: "internal error; try again (a redelivery never runs a push twice)" } };
  }
  if (!e.retryable) return { status: e.status, body: { error: e.message } };
  log.warn({ err: e.message, status: e.status }, "request met an outage");
  const after = e instanceof RetryableError && e.retryAfterMs !== undefined ? Math.ceil(e.retryAfterMs / 1000) : DEFAULT_RETRY_AFTER_SEC;
  return { status: e.status, body: { error: e.message }, headers: { "Retry-After": String(after) } };
}
