import type { ApprovalRequest, Notice, NoticeKind } from "./port.ts";

/**
 * The sentences every chat says the same way, as plain text (each channel escapes them for
 * its own markup): Slack's blocks and the robots' cards differ in shape, not in wording.
 */

/** The longest piece of user-controlled text a message repeats (a branch, a name, an error). */
export const MAX_FIELD_CHARS = 300;

/** `text` cut to `max` characters, marked as cut. */
export function clip(text: string, max = MAX_FIELD_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

/** `branch main`, `tag v1.2`, or nothing when the run names neither. */
export function refLabel(x: { branch?: string | undefined; tag?: string | undefined }): string | undefined {
  if (x.branch) return `branch ${clip(x.branch)}`;
  if (x.tag) return `tag ${clip(x.tag)}`;
  return undefined;
}

/** What the gate needs: "2 approvals from ops-lead, alice", "1 approval from anyone". */
export function needs(req: Pick<ApprovalRequest, "count" | "approvers">): string {
  const what = `${req.count} approval${req.count === 1 ? "" : "s"}`;
  return req.approvers.length > 0 ? `${what} from ${req.approvers.map((a) => clip(a, 100)).join(", ")}` : `${what} from anyone`;
}

/** "deploy (production)": the stage and where it goes. */
export function stageLabel(x: { stageName?: string | undefined; environment?: string | undefined }): string {
  const stage = clip(x.stageName ?? "a stage", 100);
  return x.environment ? `${stage} (${clip(x.environment, 100)})` : stage;
}

/** An instant as people read it in any chat: UTC, to the minute. */
export function utcTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

const NOTICE_TITLES: { readonly [K in NoticeKind]: (n: Notice) => string } = {
  failed: (n) => `Run failed${n.stageName ? ` at ${stageLabel(n)}` : ""}`,
  released: (n) => `Released${n.environment ? ` to ${clip(n.environment, 100)}` : ""}`,
  "rolled-back": (n) => `Rolled back${n.environment ? ` ${clip(n.environment, 100)}` : ""}`,
  "timed-out": (n) => `Approval timed out: ${stageLabel(n)}`,
};

export function noticeTitle(notice: Notice): string {
  return NOTICE_TITLES[notice.kind](notice);
}

/** The title of an approval request: "Approval needed: deploy (production)". */
export function approvalTitle(req: ApprovalRequest): string {
  return `Approval needed: ${stageLabel(req)}`;
}

/** "acme/shop branch main abc1234": the run's subject on one line. */
export function subject(x: { repo: string; branch?: string | undefined; tag?: string | undefined; sha: string }): string {
  return [clip(x.repo, 200), refLabel(x), shortSha(x.sha)].filter(Boolean).join(" ");
}
