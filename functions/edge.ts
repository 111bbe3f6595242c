// POST /hooks/github, /hooks/gitlab and /chat/slack at the edge: a Cloudflare module Worker
// (wrangler.toml) that verifies, dedupes and enqueues, as functions/webhook.ts and chat.ts do on
// Lambda, reaching the stack's table and queue through the AWS SDK over fetch. Web-standard APIs only:
// its bundle is built for workerd without Node's built-ins (lib/bundles/bundle.ts), so a `node:`
// import on this path fails the build.
import type { Hono } from "hono";
import { sdkApis } from "../lib/aws/sdk-apis.ts";
import { loadEdgeConfig, secretsOf } from "../lib/config.ts";
import { createCoreServices } from "../lib/core-services.ts";
import { edgeApp } from "../lib/http/edge-app.ts";
import { createLogger } from "../lib/log.ts";

async function start(bindings: Readonly<Record<string, unknown>>): Promise<Hono> {
  const { config, credentials } = loadEdgeConfig(bindings);
  const log = createLogger(config.HOIST_LOG_LEVEL, [...secretsOf(config), credentials.secretAccessKey]);
  return edgeApp(await createCoreServices(config, sdkApis(config, credentials), { log }));
}

/** An isolate serves many requests: its services are made on the first one and kept. */
let app: Promise<Hono> | undefined;

export default {
  async fetch(request: Request, bindings: Readonly<Record<string, unknown>>): Promise<Response> {
    app ??= start(bindings);
    try {
      return await (await app).fetch(request);
    } catch (err) {
      // Only the start throws here (the app answers its own errors): a bad setting or an
      // unreachable table. The next request tries again; the sender retries this one.
      app = undefined;
      // No logger without settings: the console is the Worker's log.
      console.error(`hoist edge: cannot start: ${(err as Error).message}`);
      return Response.json({ error: "the webhook cannot start: its log says why" }, { status: 503 });
    }
  },
};
