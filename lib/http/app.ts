import type { Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import type { Logger } from "../log.ts";
import { SourceUnavailableError } from "../runs/ingest.ts";
import { BadPayloadError } from "../scm/errors.ts";

/** One place maps errors to answers; a body never carries a stack or a secret. */
export function withErrors(app: Hono, log: Logger): Hono {
  app.onError((err, c) => {
    if (err instanceof HTTPException) {
      // A middleware that prepared its own answer (bearerAuth: its body and WWW-Authenticate) gets it sent.
      if (err.res) return err.getResponse();
      return c.json({ error: err.message }, err.status);
    }
    if (err instanceof BadPayloadError) return c.json({ error: err.message }, 400);
    if (err instanceof SourceUnavailableError) {
      log.warn({ err: err.message }, "webhook could not read the repository");
      return c.json({ error: `${err.message}; nothing was recorded, redeliver the webhook once the repository is reachable` }, 502);
    }
    log.error({ err }, "request failed");
    return c.json({ error: "internal error; try again (a redelivery never runs a push twice)" }, 500);
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
