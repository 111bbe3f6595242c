import type { Context, Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type * as z from "zod";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "../log.ts";
import { errorAnswer, type Answer } from "./answers.ts";

/** An answer as hono's response. */
export function reply(c: Context, a: Answer): Response {
  return c.json(a.body, a.status as ContentfulStatusCode, a.headers);
}

/** Every error a route throws is answered by errorAnswer (lib/http/answers.ts), hono's own by their status. */
export function withErrors(app: Hono, log: Logger): Hono {
  app.onError((err, c) => {
    if (err instanceof HTTPException) {
      // A middleware that prepared its own answer (bearerAuth: its body and WWW-Authenticate) gets it sent.
      if (err.res) return err.getResponse();
      return c.json({ error: err.message }, err.status);
    }
    return reply(c, errorAnswer(err, log));
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
