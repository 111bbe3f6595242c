import type { Hono } from "hono";
import type { CoreServices } from "../core-services.ts";
import { withErrors } from "./app.ts";
import { webhookOptions } from "./webhook-receive.ts";
import { webhookRoutes } from "./webhooks.ts";

/** The webhooks as a hono app, for the local server and the edge Worker. */
export function webhookApp(s: Pick<CoreServices, "config" | "ingest" | "log">): Hono {
  return withErrors(webhookRoutes(webhookOptions(s)), s.log);
}
