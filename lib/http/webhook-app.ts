import type { Hono } from "hono";
import type { CoreServices } from "../core-services.ts";
import { withErrors } from "./app.ts";
import { webhookRoutes } from "./webhooks.ts";

/** The webhook function's whole app: it stands on the core services alone, so its bundle holds no other route. */
export function webhookApp(s: Pick<CoreServices, "config" | "ingest" | "log">): Hono {
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
