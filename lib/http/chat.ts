import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { verifyLink, type LinkCheck } from "../chat/links.ts";
import type { Decide } from "../chat/port.ts";
import type { DecideResult } from "../pipeline/approval.ts";
import { MAX_SLACK_BODY_BYTES, parseSlackClick } from "../chat/slack-payload.ts";
import { SLACK_MAX_SKEW_SEC, verifySlackSignature } from "../chat/slack-signature.ts";
import type { Clock } from "../clock.ts";
import { classify } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { OnceStore } from "../store/once.ts";
import { confirmPage, messagePage, PAGE_HEADERS } from "./chat-pages.ts";

export interface SlackRouteOptions {
  /** The Slack app's signing secret (SLACK_SIGNING_SECRET); unset: /chat/slack answers 503. */
  signingSecret?: string;
  once: OnceStore;
  /**
   * Hands a verified, first-seen click (its raw body) to a worker, which records the decision
   * and updates the message (lib/chat/settle.ts): Slack waits three seconds for the answer, and
   * on Lambda nothing runs once the answer is sent.
   */
  settle: (body: string) => Promise<void>;
  clock: Clock;
}

export interface LinkRouteOptions {
  /** Signs approval links (HOIST_LINK_SECRET); unset: /chat/approve answers 503. */
  linkSecret?: string;
  once: OnceStore;
  decide: Decide;
  clock: Clock;
  log: Logger;
}

export type ChatRouteOptions = SlackRouteOptions & LinkRouteOptions;
/**
 * A signature verifies while its timestamp is within five minutes of the clock, either way:
 * a replay can come up to ten minutes after the first delivery, and its marker outlives that.
 */
const SLACK_REPLAY_TTL_MS = (2 * SLACK_MAX_SKEW_SEC + 60) * 1000;
/** A used link's marker outlives the link by this margin, for clocks that disagree a little. */
const LINK_MARGIN_MS = 60_000;

/**
 * POST /chat/slack (Slack's interactivity requests) and GET/POST /chat/approve/:token (robots'
 * signed links). Neither decides anything itself: a click goes to a worker, a link calls
 * `decide`, and both are judged at the gate by the same rules as the API's. Each refusal
 * happens before anything is handed on.
 */
export function chatRoutes(opts: ChatRouteOptions): Hono {
  const app = new Hono();
  app.route("/", slackRoutes(opts));
  app.route("/", linkRoutes(opts));
  return app;
}

/** POST /chat/slack: verifies, dedupes and hands the click on; the webhook's shape (it runs at the edge too, functions/edge.ts). */
export function slackRoutes(opts: SlackRouteOptions): Hono {
  const app = new Hono();
  app.post(
    "/chat/slack",
    bodyLimit({ maxSize: MAX_SLACK_BODY_BYTES, onError: (c) => c.json({ error: `body larger than ${MAX_SLACK_BODY_BYTES} bytes` }, 413) }),
    async (c) => {
      if (!opts.signingSecret) throw new HTTPException(503, { message: "Slack is not configured: set SLACK_SIGNING_SECRET on the server" });
      const raw = new Uint8Array(await c.req.arrayBuffer());
      const signature = c.req.header("x-slack-signature");
      const check = await verifySlackSignature(raw, { timestamp: c.req.header("x-slack-request-timestamp"), signature }, [opts.signingSecret], opts.clock.now());
      if (!check.ok) return c.json({ error: check.reason }, 401);
      const body = new TextDecoder().decode(raw);
      // Read here so that a malformed click is refused to Slack, not failed in a worker.
      parseSlackClick(body);
      // A verified signature is unique to its timestamp and body: seen before, it is a replay.
      if (!(await opts.once.claimOnce(`slack:${signature}`, SLACK_REPLAY_TTL_MS)))
        return c.json({ error: "this request was delivered before; a replay decides nothing" }, 409);
      await opts.settle(body);
      return c.body(null, 200);
    },
  );
  return app;
}

/** GET/POST /chat/approve/:token: a robot's signed link, decided while the person waits for the page. */
export function linkRoutes(opts: LinkRouteOptions): Hono {
  const app = new Hono();
  app.get("/chat/approve/:token", async (c) => {
    const check = await checkLink(opts, c.req.param("token"));
    if (!check.ok) return refused(c, check);
    return c.html(confirmPage(check.claims), 200, PAGE_HEADERS);
  });

  app.post("/chat/approve/:token", async (c) => {
    const check = await checkLink(opts, c.req.param("token"));
    if (!check.ok) return refused(c, check);
    const { claims } = check;
    const now = opts.clock.now();
    if (!(await opts.once.claimOnce(`link:${claims.nonce}`, Math.max(claims.exp - now, 0) + LINK_MARGIN_MS)))
      return c.html(messagePage("This link was used", "Each approval link works once, and this one has been used."), 409, PAGE_HEADERS);
    let result: DecideResult;
    try {
      result = await opts.decide({ runId: claims.run, stage: claims.stage, approve: claims.decision === "approve", by: claims.approver, identities: [claims.approver], via: "robot" });
    } catch (err) {
      opts.log.error({ runId: claims.run, stage: claims.stage, err: classify(err).message }, "a decision through an approval link could not be recorded");
      // The nonce is spent: OnceStore has no undo, and a second use of one link must never decide twice.
      return c.html(messagePage("Not recorded", "Hoist could not record the decision just now, and this link cannot be used again: decide through the API or the CLI."), 503, PAGE_HEADERS);
    }
    opts.log.info({ runId: claims.run, stage: claims.stage, by: claims.approver, via: "robot", outcome: result.outcome }, "decision through an approval link");
    const [status, title, text] = linkOutcome(result);
    return c.html(messagePage(title, text), status, PAGE_HEADERS);
  });

  return app;
}

async function checkLink(opts: LinkRouteOptions, token: string): Promise<LinkCheck> {
  if (!opts.linkSecret) throw new HTTPException(503, { message: "approval links are not configured: set HOIST_LINK_SECRET on the server" });
  return verifyLink(token, opts.linkSecret, opts.clock.now());
}

function refused(c: Context, check: Extract<LinkCheck, { ok: false }>): Response {
  // An expired link was real: 410 says it is gone for good; anything else was never valid.
  const status = check.reason === "expired" ? 410 : 403;
  const title = check.reason === "expired" ? "This link has expired" : "This is not a valid approval link";
  return c.html(messagePage(title, check.message), status, PAGE_HEADERS);
}

function linkOutcome(result: DecideResult): [ContentfulStatusCode, string, string] {
  switch (result.outcome) {
    case "accepted":
      return [200, "Decision recorded", result.summary];
    case "duplicate":
      return [200, "You have decided already", result.summary];
    case "refused":
      return [403, "Your decision was not counted", result.reason];
    case "not-waiting":
      return [409, "Nothing to decide", result.reason];
    case "missing":
      return [404, "No such run", "The run this link is for does not exist (any more)."];
  }
}
