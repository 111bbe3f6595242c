import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { reply } from "./app.ts";
import { receiveWebhook, tooLarge, type WebhookOptions, type WebhookProvider } from "./webhook-receive.ts";

/** POST /hooks/github and /hooks/gitlab as hono routes: receiveWebhook answers them. */
export function webhookRoutes(opts: WebhookOptions): Hono {
  const app = new Hono();
  const limit = sizeLimit(opts.maxBodyBytes);
  const route = (provider: WebhookProvider) => async (c: Context) =>
    reply(c, await receiveWebhook(opts, provider, { header: (name) => c.req.header(name), body: new Uint8Array(await c.req.arrayBuffer()) }));
  app.post("/hooks/github", limit, route("github"));
  app.post("/hooks/gitlab", limit, route("gitlab"));
  return app;
}

/**
 * 413 for a body over `maxSize`, before it is read. A declared Content-Length is checked from
 * the header alone: hono's bodyLimit reads `c.req.raw.body`, which makes @hono/node-server
 * build a web Request and stream for every webhook (a tenth of the request's CPU, measured
 * with bench/ingest) instead of reading the bytes directly. Chunked bodies still go through
 * bodyLimit.
 */
function sizeLimit(maxSize: number): MiddlewareHandler {
  const over = (c: Context) => reply(c, tooLarge(maxSize));
  const streamed = bodyLimit({ maxSize, onError: over });
  return async (c, next) => {
    const declared = c.req.header("content-length");
    if (declared === undefined || c.req.header("transfer-encoding") !== undefined) return streamed(c, next);
    if (Number(declared) > maxSize) return over(c);
    await next();
  };
}
