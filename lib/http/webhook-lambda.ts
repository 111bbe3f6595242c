import { Buffer } from "node:buffer";
import * as z from "../zod-mini.ts";
import type { Logger } from "../log.ts";
import { errorAnswer, type Answer } from "./answers.ts";
import { receiveWebhook, type WebhookOptions, type WebhookProvider } from "./webhook-receive.ts";

/** The parts of an API Gateway HTTP API request (payload format 2.0) a webhook needs. */
const HttpApiRequest = z.object({
  rawPath: z.string(),
  requestContext: z.object({ http: z.object({ method: z.string() }) }),
  headers: z._default(z.record(z.string(), z.string()), {}),
  body: z.optional(z.string()),
  isBase64Encoded: z._default(z.boolean(), false),
});

/** What API Gateway turns into the HTTP response (payload format 2.0). */
export interface HttpApiResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: false;
}

const ROUTES: Record<string, WebhookProvider> = { "/hooks/github": "github", "/hooks/gitlab": "gitlab" };

/**
 * The webhook function's handler: an API Gateway request straight to receiveWebhook, the same
 * answers as hono's routes (test/integration/webhook.test.ts runs its cases on both). Written
 * by hand rather than through hono's Lambda adapter, which makes every request a web Request
 * and Response: their first use loads Node's fetch implementation, about 20 ms of the cold
 * start a pusher waits on (bench/coldstart), for two routes that need neither.
 */
export function webhookLambda(opts: WebhookOptions, log: Logger): (event: unknown) => Promise<HttpApiResult> {
  return async (event) => result(await answer(opts, log, event));
}

async function answer(opts: WebhookOptions, log: Logger, event: unknown): Promise<Answer> {
  const parsed = HttpApiRequest.safeParse(event);
  if (!parsed.success) return { status: 400, body: { error: "not an API Gateway HTTP API request (payload format 2.0)" } };
  const req = parsed.data;
  const provider = req.requestContext.http.method === "POST" ? ROUTES[req.rawPath] : undefined;
  if (!provider) return { status: 404, body: { error: `no route ${req.requestContext.http.method} ${req.rawPath}` } };
  // HTTP API gives header names in lower case; a test event may not.
  const headers = new Map(Object.entries(req.headers).map(([name, value]) => [name.toLowerCase(), value]));
  const body = req.body === undefined ? new Uint8Array() : req.isBase64Encoded ? new Uint8Array(Buffer.from(req.body, "base64")) : new TextEncoder().encode(req.body);
  try {
    return await receiveWebhook(opts, provider, { header: (name) => headers.get(name), body });
  } catch (err) {
    return errorAnswer(err, log);
  }
}

function result(a: Answer): HttpApiResult {
  return { statusCode: a.status, headers: { "content-type": "application/json", ...a.headers }, body: JSON.stringify(a.body), isBase64Encoded: false };
}
