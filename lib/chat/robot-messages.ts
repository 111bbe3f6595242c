import type { ApprovalRequest, Notice, RunFacts } from "./port.ts";
import { approvalTitle, clip, needs, noticeTitle, refLabel, shortSha, utcTime } from "./wording.ts";

/**
 * What a group robot says, before it is put in a vendor's shape (lib/chat/robot-formats.ts):
 * a title, markdown lines, and link buttons. DingTalk, Feishu and WeCom all render
 * `[label](url)` and `**bold**`, and some of them `<font>`, `<at>` and HTML.
 */

export type RobotButtonKind = "approve" | "reject" | "view";

export interface RobotButton {
  label: string;
  url: string;
  kind: RobotButtonKind;
}

export interface RobotMessage {
  /** Plain text: the card's title, and what a notification shows. */
  title: string;
  /** Markdown; every value from a pusher or a repository went through robotText. */
  lines: string[];
  buttons: RobotButton[];
}

/** The approve and reject links bound to one approver ("robot" when the rule names nobody). */
export interface ApproverLinks {
  approver: string;
  approve: string;
  reject: string;
}

/** The name links are bound to when the rule names no approver. */
export const ANYONE = "robot";

/**
 * A value from outside, made inert in all three markdowns: `[ ]` could make a link that reads
 * like ours, `< >` a tag (`<at user_id="all">`, `<font>`), a line break a fake line. The
 * fullwidth brackets read the same and mean nothing to the renderers, whose escaping rules
 * differ and are not all documented.
 */
export function robotText(text: string, max?: number): string {
  return clip(text, max)
    .replace(/[\r\n]+/g, " ")
    .replace(/\[/g, "［")
    .replace(/\]/g, "］")
    .replace(/</g, "＜")
    .replace(/>/g, "＞");
}

function runLines(x: RunFacts): string[] {
  const ref = refLabel(x);
  return [
    `**Repository** ${robotText(x.provider ? `${x.provider}:${x.repo}` : x.repo)}`,
    ...(ref ? [`**Ref** ${robotText(ref)}`] : []),
    `**Commit** ${robotText(shortSha(x.sha))}`,
    `**Pipeline** ${robotText(x.pipeline, 100)}`,
    ...(x.environment ? [`**Environment** ${robotText(x.environment, 100)}`] : []),
    ...(x.pusher ? [`**Pushed by** ${robotText(x.pusher, 100)}`] : []),
  ];
}

/**
 * Asks a group for a decision: one approve and one reject link per approver, each bound to
 * that person, so whoever clicks decides as the name on the button. Without links (no
 * HOIST_LINK_SECRET) the message only says where to decide.
 */
export function robotApprovalMessage(req: ApprovalRequest, links: readonly ApproverLinks[]): RobotMessage {
  const lines = [
    ...runLines(req),
    `**Stage** ${robotText(req.stageName, 100)} (#${req.stage})`,
    `**Needs** ${robotText(needs(req))}, by ${utcTime(req.expiresAt)}`,
    links.length > 0 ? `[View the run](${req.runUrl})` : `Decide on the run's page: [${robotText(req.runId)}](${req.runUrl})`,
  ];
  const as = (l: ApproverLinks) => (l.approver === ANYONE ? "" : ` as ${robotText(l.approver, 60)}`);
  const buttons = links.flatMap((l): RobotButton[] => [
    { label: `Approve${as(l)}`, url: l.approve, kind: "approve" },
    { label: `Reject${as(l)}`, url: l.reject, kind: "reject" },
  ]);
  return { title: robotText(approvalTitle(req), 120), lines, buttons };
}

/** A run's news for a group: failed, waiting, released, rolled back, timed out. */
export function robotNoticeMessage(notice: Notice): RobotMessage {
  const lines = [
    ...runLines(notice),
    ...(notice.stageName ? [`**Stage** ${robotText(notice.stageName, 100)}`] : []),
    ...(notice.error ? [`**Error** ${robotText(notice.error, 600)}`] : []),
  ];
  return { title: robotText(noticeTitle(notice), 120), lines, buttons: [{ label: "View the run", url: notice.runUrl, kind: "view" }] };
}
