import type { Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { classify, RetryableError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** When an outage names no time, a client is told to come back after this long. */
const DEFAULT_RETRY_AFTER_SEC = 5;

/**
 * One place maps errors to answers, by the one error tree (lib/errors.ts): an outage is 503
 * with Retry-After, bad input 400, a missing thing 404, a conflict 409. A body never carries
 * a stack or a secret; a fault of our own is logged and answered 500 without its details.
 */
export function withErrors(app: Hono, log: Logger): Hono {
  app.onError((err, c) => {
    if (err instanceof HTTPException) {
      // A middleware that prepared its own answer (bearerAuth: its body and WWW-Authenticate) gets it sent.
      if (err.res) return err.getResponse();
      return c.json({ error: err.message }, err.status);
    }
    const e = classify(err);
    const status = e.status as ContentfulStatusCode;
    if (status >= 500 && !e.retryable) {
      log.error({ err }, "request failed");
      return c.json({ error: "internal error; try again (a redelivery never runs a push twice)" }, 500);
    }
    if (e.retryable) {
      log.warn({ err: e.message, status }, "request met an outage");
      const after = e instanceof RetryableError && e.retryAfterMs !== undefined ? Math.ceil(e.retryAfterMs / 1000) : DEFAULT_RETRY_AFTER_SEC;
      c.header("Retry-After", String(after));
    }
    return c.json({ error: e.message }, status);
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
  return app;
}

/**
 * The request's JSON body; an empty one is `{}` when `optional`. Anything else that is not
 * JSON is a 400: reading a truncated body as "no options" would act on what was not asked.
 */
export async function jsonBody(c: Context, optional = false): Promise<unknown> {
  const text = await c.req.text();
  if (optional && text.trim() === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HTTPException(400, { message: "body is not JSON" });
  }
}

/** Validates a query or body; a mismatch is a 400 naming each field and what is wrong. */
export function parse<T extends z.ZodType>(schema: T, input: unknown, what = "query"): z.output<T> {
  const r = schema.safeParse(input);
  if (!r.success) throw new HTTPException(400, { message: r.error.issues.map((i) => `${i.path.join(".") || what}: ${i.message}`).join("; ") });
  return r.data;
}
