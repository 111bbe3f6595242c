import type { Clock } from "../clock.ts";
import { classify } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { DecideResult } from "../pipeline/approval.ts";
import type { Decide } from "./port.ts";
import { noteMessage, settledMessage, type DecisionOutcome, type SlackBlock } from "./slack-messages.ts";
import type { SlackClick } from "./slack-payload.ts";
import type { SlackAdapter } from "./slack.ts";

export interface SettleDeps {
  /** Updates the message clicked; unset: the decision is recorded and the message left as it is. */
  slack?: SlackAdapter;
  decide: Decide;
  clock: Clock;
  log: Logger;
}

/**
 * A Slack click, in a worker (the route that took it answered Slack and queued it): record the
 * decision, then show it where it was made. The
 * message clicked is updated for everyone (chat.update, or its response_url when that fails);
 * a decision that did not count is told to the clicker alone.
 */
export async function settleClick(opts: SettleDeps, click: SlackClick): Promise<void> {
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

async function show(opts: SettleDeps, click: SlackClick, outcome: DecisionOutcome, log: Logger): Promise<void> {
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

async function tell(opts: SettleDeps, click: SlackClick, text: string, log: Logger): Promise<void> {
  if (!opts.slack) return;
  try {
    await opts.slack.postToResponseUrl(click.payload.response_url, noteMessage(text), { ephemeral: true });
  } catch (err) {
    log.warn({ err: classify(err).message }, "the clicker could not be told");
  }
}
