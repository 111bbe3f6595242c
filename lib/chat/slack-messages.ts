import type { ChatPostMessageArguments } from "@slack/web-api";
import type { ApprovalRequest, Notice, NoticeKind, RunFacts } from "./port.ts";
import { buttonValue } from "./slack-payload.ts";
import { approvalTitle, clip, needs, noticeTitle, refLabel, shortSha, stageLabel, subject, utcTime } from "./wording.ts";

/**
 * Block Kit messages (https://api.slack.com/block-kit). Every message has a plain `text`
 * fallback (notifications and screen readers show it), and every piece of text a pusher or a
 * repository controls is escaped, so a branch named `<!channel>` cannot ping a channel.
 */

export type SlackBlock = Extract<ChatPostMessageArguments, { blocks: unknown }>["blocks"][number];

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

/**
 * Where a decision left the gate: still `waiting` for more approvals (the buttons stay for the
 * others), `approved`, `rejected`, or `closed` by something else (timed out, cancelled).
 */
export type OutcomeState = "waiting" | "approved" | "rejected" | "closed";

export interface DecisionOutcome {
  state: OutcomeState;
  /** decide's sentence: "approved by alice (1 of 2)", "rejected by bob: not today". */
  summary: string;
  /** When it was decided, epoch ms. */
  at: number;
}

const OUTCOME_MARKS: { readonly [K in OutcomeState]: string } = {
  waiting: ":hourglass_flowing_sand:",
  approved: ":white_check_mark:",
  rejected: ":no_entry:",
  closed: ":lock:",
};

export const APPROVE_ACTION = "hoist.approve";
export const REJECT_ACTION = "hoist.reject";
/** Block ids the outcome update finds again in the message Slack sends back with a click. */
export const ACTIONS_BLOCK = "hoist.approval.actions";
export const OUTCOME_BLOCK = "hoist.approval.outcome";

/** Slack's three control characters in mrkdwn (https://api.slack.com/reference/surfaces/formatting#escaping). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A link Slack renders with `label`; `|` would end the URL early, so it is encoded. */
function link(url: string, label: string): string {
  return `<${escapeMrkdwn(url).replace(/\|/g, "%7C")}|${escapeMrkdwn(label)}>`;
}

/** A time every reader sees in their own zone, with UTC as the fallback. */
function slackDate(ms: number): string {
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} at {time}|${utcTime(ms)}>`;
}

const mrkdwn = (text: string) => ({ type: "mrkdwn" as const, text });
const plain = (text: string, max: number) => ({ type: "plain_text" as const, text: clip(text, max), emoji: true });

/** The run's facts as section fields (at most ten, by Block Kit's rule). */
function runFields(x: RunFacts): SlackBlock {
  const fields = [
    mrkdwn(`*Repository*\n${escapeMrkdwn(clip(x.provider ? `${x.provider}:${x.repo}` : x.repo))}`),
    ...(refLabel(x) ? [mrkdwn(`*Ref*\n${escapeMrkdwn(refLabel(x)!)}`)] : []),
    mrkdwn(`*Commit*\n\`${escapeMrkdwn(shortSha(x.sha))}\``),
    mrkdwn(`*Pipeline*\n${escapeMrkdwn(clip(x.pipeline, 100))}`),
    ...(x.stageName ? [mrkdwn(`*Stage*\n${escapeMrkdwn(clip(x.stageName, 100))}`)] : []),
    ...(x.environment ? [mrkdwn(`*Environment*\n${escapeMrkdwn(clip(x.environment, 100))}`)] : []),
    ...(x.pusher ? [mrkdwn(`*Pushed by*\n${escapeMrkdwn(clip(x.pusher, 100))}`)] : []),
  ];
  return { type: "section", fields };
}

function approvalBlocks(req: ApprovalRequest, withButtons: boolean): SlackBlock[] {
  const blocks: SlackBlock[] = [
    { type: "header", text: plain(approvalTitle(req), 150) },
    runFields({ ...req, stageName: `${req.stageName} (#${req.stage})` }),
    {
      type: "section",
      text: mrkdwn(`*Needs* ${escapeMrkdwn(needs(req))}, by ${slackDate(req.expiresAt)}\n${link(req.runUrl, "View the run")}`),
    },
  ];
  if (withButtons) blocks.push(actionsBlock(req));
  return blocks;
}

function actionsBlock(req: ApprovalRequest): SlackBlock {
  return {
    type: "actions",
    block_id: ACTIONS_BLOCK,
    elements: [
      { type: "button", action_id: APPROVE_ACTION, text: plain("Approve", 75), style: "primary", value: buttonValue(req.runId, req.stage, true) },
      {
        type: "button",
        action_id: REJECT_ACTION,
        text: plain("Reject", 75),
        style: "danger",
        value: buttonValue(req.runId, req.stage, false),
        // A rejection ends the run's release at once: one more click to be sure.
        confirm: {
          title: plain("Reject this release?", 100),
          text: plain(`${stageLabel(req)} of ${subject(req)} will not run.`, 300),
          confirm: plain("Reject", 30),
          deny: plain("Cancel", 30),
          style: "danger",
        },
      },
    ],
  };
}

function outcomeBlock(outcome: DecisionOutcome): SlackBlock {
  return { type: "context", block_id: OUTCOME_BLOCK, elements: [mrkdwn(`${OUTCOME_MARKS[outcome.state]} ${escapeMrkdwn(clip(outcome.summary, 1000))} · ${slackDate(outcome.at)}`)] };
}

function approvalText(req: ApprovalRequest): string {
  return escapeMrkdwn(`${approvalTitle(req)} for ${subject(req)}, pipeline ${clip(req.pipeline, 100)}: ${needs(req)} by ${utcTime(req.expiresAt)}. ${req.runUrl}`);
}

/** Asks for a decision: the run's facts, what the gate needs and by when, Approve and Reject. */
export function approvalRequestMessage(req: ApprovalRequest): SlackMessage {
  return { text: approvalText(req), blocks: approvalBlocks(req, true) };
}

/** The request once decided: the same facts and a line on the outcome; buttons only while it still waits. */
export function decisionMessage(req: ApprovalRequest, outcome: DecisionOutcome): SlackMessage {
  return { text: escapeMrkdwn(`${approvalTitle(req)} for ${subject(req)}: ${outcome.summary}`), blocks: [...approvalBlocks(req, outcome.state === "waiting"), outcomeBlock(outcome)] };
}

/**
 * The message a click came from, updated with the outcome: for the interactivity endpoint,
 * which has the original blocks (Slack sends them with the click) but not the run. A previous
 * outcome line is replaced; the buttons go once the gate no longer waits.
 */
export function settledMessage(original: { text?: string; blocks: readonly SlackBlock[] }, outcome: DecisionOutcome): SlackMessage {
  const kept = original.blocks.filter((b) => {
    const id = (b as { block_id?: unknown }).block_id;
    return id !== OUTCOME_BLOCK && (outcome.state === "waiting" || id !== ACTIONS_BLOCK);
  });
  const text = `${original.text ?? "Approval"}: ${escapeMrkdwn(outcome.summary)}`;
  return { text: clip(text, 3000), blocks: [...kept, outcomeBlock(outcome)] };
}

/** A one-line answer to the person who clicked (shown to them alone through response_url). */
export function noteMessage(text: string): SlackMessage {
  const escaped = escapeMrkdwn(clip(text, 2000));
  return { text: escaped, blocks: [{ type: "section", text: mrkdwn(escaped) }] };
}

const NOTICE_MARKS: { readonly [K in NoticeKind]: string } = {
  failed: ":x:",
  released: ":rocket:",
  "rolled-back": ":leftwards_arrow_with_hook:",
  "timed-out": ":alarm_clock:",
};

/** A run's news: failed, released, rolled back, approval timed out. */
export function noticeMessage(notice: Notice): SlackMessage {
  const title = noticeTitle(notice);
  const blocks: SlackBlock[] = [
    { type: "section", text: mrkdwn(`${NOTICE_MARKS[notice.kind]} *${escapeMrkdwn(title)}* · ${escapeMrkdwn(subject(notice))}`) },
    runFields(notice),
  ];
  // Three backticks in an error would close the code block early and let the rest format.
  if (notice.error) blocks.push({ type: "section", text: mrkdwn(`\`\`\`${escapeMrkdwn(clip(notice.error, 1500)).replace(/```/g, "'''")}\`\`\``) });
  blocks.push({ type: "context", elements: [mrkdwn(link(notice.runUrl, "View the run"))] });
  return { text: escapeMrkdwn(`${title}: ${subject(notice)}, pipeline ${clip(notice.pipeline, 100)}. ${notice.runUrl}`), blocks };
}
