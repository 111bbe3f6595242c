import { Hono } from "hono";
import type { CoreServices } from "../core-services.ts";
import { DynamoOnceStore } from "../store/dynamo-once.ts";
import { withErrors } from "./app.ts";
import { slackRoutes } from "./chat.ts";
import { webhookApp } from "./webhook-app.ts";

/**
 * What the edge Worker serves (functions/edge.ts): pushes and Slack's clicks, each verified,
 * deduplicated against the table and queued for the workers on AWS. Robots' approval links
 * decide while the person waits for the page, so they stay with the chat function.
 */
export function edgeApp(s: Pick<CoreServices, "config" | "ingest" | "log" | "dynamo" | "queue" | "clock">): Hono {
  const app = new Hono();
  app.route("/", webhookApp(s));
  app.route(
    "/",
    slackRoutes({
      ...(s.config.SLACK_SIGNING_SECRET ? { signingSecret: s.config.SLACK_SIGNING_SECRET } : {}),
      once: new DynamoOnceStore(s.dynamo, s.config.HOIST_TABLE, s.clock),
      settle: (body) => s.queue.send({ slackClick: body }),
      clock: s.clock,
    }),
  );
  // Answers the Slack routes' errors as the webhook's own withErrors answers theirs.
  return withErrors(app, s.log);
}
