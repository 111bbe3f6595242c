import { Hono } from "hono";
import type { Services } from "../services.ts";
import { apiRoutes } from "./api.ts";
import { chatRoutes } from "./chat.ts";
import { withErrors } from "./app.ts";
import { webhookApp } from "./webhook-app.ts";

/** The whole HTTP surface (webhooks + API + health), as the local runtime serves it. */
export function httpApp(s: Services): Hono {
  const app = new Hono();
  app.route("/", webhookApp(s));
  app.route("/", chatApp(s));
  app.route("/", apiApp(s));
  return withErrors(app, s.log);
}

/** Slack's interactivity requests (settled by a worker) and robots' approval links: each decision through the API's `decide`. */
export function chatApp(s: Services): Hono {
  return withErrors(
    chatRoutes({
      ...(s.config.SLACK_SIGNING_SECRET ? { signingSecret: s.config.SLACK_SIGNING_SECRET } : {}),
      ...(s.config.HOIST_LINK_SECRET ? { linkSecret: s.config.HOIST_LINK_SECRET } : {}),
      once: s.people.once,
      settle: (body) => s.queue.send({ slackClick: body }),
      decide: s.settle.decide,
      clock: s.clock,
      log: s.log,
    }),
    s.log,
  );
}

export function apiApp(s: Services): Hono {
  const environments = { store: s.releases, queue: s.queue, clock: s.clock };
  const registries = { store: s.registries, clock: s.clock };
  const variables = { store: s.variables, environments: s.releases };
  const app = new Hono();
  // The API function's own liveness check (the load balancer's or the operator's), without a token.
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.route(
    "/",
    apiRoutes({
      store: s.store,
      queue: s.queue,
      clock: s.clock,
      environments,
      registries,
      variables,
      deliveries: s.deliveries,
      observer: s.observer,
      trigger: s.trigger,
      ...(s.config.HOIST_API_TOKEN ? { token: s.config.HOIST_API_TOKEN } : {}),
    }),
  );
  return withErrors(app, s.log);
}
