import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { verifyLink, type LinkCheck } from "../chat/links.ts";
import type { Decide } from "../chat/port.ts";
import type { DecideResult } from "../pipeline/approval.ts";
import { parseSlackClick, type SlackClick } from "../chat/slack-payload.ts";
import { noteMessage, settledMessage, type DecisionOutcome, type SlackBlock } from "../chat/slack-messages.ts";
import { SLACK_MAX_SKEW_SEC, verifySlackSignature } from "../chat/slack-signature.ts";
import type { SlackAdapter } from "../chat/slack.ts";
import type { Clock } from "../clock.ts";
import { classify } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { OnceStore } from "../store/once.ts";
import { confirmPage, messagePage, PAGE_HEADERS } from "./chat-pages.ts";

export interface ChatRouteOptions {
  /** The Slack app's signing secret (SLACK_SIGNING_SECRET); unset: /chat/slack answers 503. */
  signingSecret?: string;
  /** Signs approval links (HOIST_LINK_SECRET); unset: /chat/approve answers 503. */
  linkSecret?: string;
  /** Updates the message clicked; unset: the decision is recorded and the message left as it is. */
  slack?: SlackAdapter;
  once: OnceStore;
  decide: Decide;
  /** Runs work after the answer is sent (Slack gives an interactivity request three seconds). */
  defer: (task: () => Promise<void>) => void;
  clock: Clock;
  log: Logger;
}

/** An interactivity payload is a few kilobytes, the original message included. */
export const MAX_SLACK_BODY_BYTES = 64 * 1024;
/**
 * A signature verifies while its timestamp is within five minutes of the clock, either way:
 * a replay can come up to ten minutes after the first delivery, and its marker outlives that.
 */
const SLACK_REPLAY_TTL_MS = (2 * SLACK_MAX_SKEW_SEC + 60) * 1000;
/** A used link's marker outlives the link by this margin, for clocks that disagree a little. */
const LINK_MARGIN_MS = 60_000;

/**
 * POST /chat/slack (Slack's interactivity requests) and GET/POST /chat/approve/:token (robots'
 * signed links). Neither decides anything itself: both call `decide`, which judges the decision
 * at the gate by the same rules as the API's. Each refusal happens before `decide` is called.
 */
export function chatRoutes(opts: ChatRouteOptions): Hono {
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
      const click = parseSlackClick(new TextDecoder().decode(raw));
      // A verified signature is unique to its timestamp and body: seen before, it is a replay.
      if (!(await opts.once.claimOnce(`slack:${signature}`, SLACK_REPLAY_TTL_MS)))
        return c.json({ error: "this request was delivered before; a replay decides nothing" }, 409);
      opts.defer(() => settleClick(opts, click));
      return c.body(null, 200);
    },
  );

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

async function checkLink(opts: ChatRouteOptions, token: string): Promise<LinkCheck> {
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

/**
 * After the click is answered: record the decision, then show it where it was made. The
 * message clicked is updated for everyone (chat.update, or its response_url when that fails);
 * a decision that did not count is told to the clicker alone.
 */
async function settleClick(opts: ChatRouteOptions, click: SlackClick): Promise<void> {
  const { payload } = click;
  // The user id and the workspace's verified email, never a name: a Slack user can rename
  // themselves, so a name would let anyone pass as an approver (or past the no-self-approval rule).
  const by = `slack:${payload.user.id}`;
  const log = opts.log.child({ runId: click.runId, stage: click.stage, by, via: "slack" });
  const email = await opts.slack?.userEmail(payload.user.id).catch((err: unknown) => void log.info({ err: classify(err).message }, "Slack gave no email for the user (the app needs users:read.email): self-approval is matched by the user id alone"));
  const identities = email ? [by, email] : [by];
  let result: DecideResult;
  try {
    result = await opts.decide({ runId: click.runId, stage: click.stage, approve: click.approve, by, identities, via: "slack" });
  } catch (err) {
    log.error({ err: classify(err).message }, "a Slack decision could not be recorded");
    await tell(opts, click, "Hoist could not record your decision just now; please click again in a minute.", log);
    return;
  }
  log.info({ outcome: result.outcome }, "decision from Slack");
  const at = opts.clock.now();
  switch (result.outcome) {
    case "accepted":
      return show(opts, click, { state: result.waiting ? "waiting" : click.approve ? "approved" : "rejected", summary: result.summary, at }, log);
    case "refused":
      return tell(opts, click, `Your decision was not counted: ${result.reason}`, log);
    case "duplicate":
      return tell(opts, click, `You have decided already: ${result.summary}`, log);
    case "not-waiting":
      return show(opts, click, { state: "closed", summary: result.reason, at }, log);
    case "missing":
      return show(opts, click, { state: "closed", summary: "the run no longer exists", at }, log);
  }
}

async function show(opts: ChatRouteOptions, click: SlackClick, outcome: DecisionOutcome, log: Logger): Promise<void> {
  const { payload } = click;
  if (!opts.slack) return;
  // Slack sends back the blocks Hoist posted, in its own form: they are passed on as they came.
  const original = { text: payload.message?.text ?? "Approval", blocks: (payload.message?.blocks ?? []) as unknown as SlackBlock[] };
  const message = settledMessage(original, outcome);
  try {
    await opts.slack.updateMessage(payload.container.channel_id, payload.container.message_ts, message);
    return;
  } catch (err) {
    log.warn({ err: classify(err).message }, "chat.update failed; answering through response_url");
  }
  try {
    await opts.slack.postToResponseUrl(payload.response_url, message);
  } catch (err) {
    log.warn({ err: classify(err).message }, "the message clicked could not be updated");
  }
}

async function tell(opts: ChatRouteOptions, click: SlackClick, text: string, log: Logger): Promise<void> {
  if (!opts.slack) return;
  try {
    await opts.slack.postToResponseUrl(click.payload.response_url, noteMessage(text), { ephemeral: true });
  } catch (err) {
    log.warn({ err: classify(err).message }, "the clicker could not be told");
  }
}
