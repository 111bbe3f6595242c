import { Hono } from "hono";
import type { Services } from "../services.ts";
import { apiRoutes } from "./api.ts";
import { withErrors } from "./app.ts";
import { webhookRoutes } from "./webhooks.ts";

/** The whole HTTP surface (webhooks + API + health), as the local runtime serves it. */
export function httpApp(s: Services): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ ok: true }));
  app.route("/", webhookApp(s));
  app.route("/", apiApp(s));
  return withErrors(app, s.log);
}

export function webhookApp(s: Services): Hono {
  return withErrors(
    webhookRoutes({
      ingest: s.ingest,
      githubSecrets: s.config.GITHUB_WEBHOOK_SECRET,
      gitlabTokens: s.config.GITLAB_WEBHOOK_TOKEN,
      maxBodyBytes: s.config.HOIST_MAX_BODY_BYTES,
    }),
    s.log,
  );
}

export function apiApp(s: Services): Hono {
  const environments = { store: s.releases, queue: s.queue, clock: s.clock };
  const registries = { store: s.registries, clock: s.clock };
  const variables = { store: s.variables, environments: s.releases };
  return withErrors(
    apiRoutes({ store: s.store, queue: s.queue, clock: s.clock, environments, registries, variables, deliveries: s.deliveries, ...(s.config.HOIST_API_TOKEN ? { token: s.config.HOIST_API_TOKEN } : {}) }),
    s.log,
  );
}
