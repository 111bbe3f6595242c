/**
 * The chat side of approval gates: what the core tells people (an
 * approval to give, a run that failed or was released) and what people tell the core back
 * (a decision). Slack and group robots (DingTalk, Feishu, WeCom) each implement ChatNotifier;
 * fanOut (lib/chat/fan-out.ts) is the one the core holds, so a chat outage never fails a run.
 */

import type { DecideResult, DecisionRequest } from "../pipeline/approval.ts";

/** Records a decision at a run's gate; the one entry point Slack, robot links, the API and the CLI share. */
export type Decide = (req: DecisionRequest) => Promise<DecideResult>;

/** A stage waiting at its gate, as people are asked to decide it. */
export interface ApprovalRequest {
  runId: string;
  /** The stage's index in the run. */
  stage: number;
  stageName: string;
  pipeline: string;
  /** The repository's full name, e.g. acme/shop. */
  repo: string;
  provider: string;
  branch?: string;
  tag?: string;
  sha: string;
  pusher?: string;
  environment?: string;
  /** Who may decide; empty: anyone who can reach a decision. */
  approvers: string[];
  /** Distinct approvals needed. */
  count: number;
  /** Epoch ms after which the gate times out. */
  expiresAt: number;
  runUrl: string;
}

/** A stage waiting for approval is told by its approval request, not by a notice. */
export const NOTICE_KINDS = ["failed", "released", "rolled-back", "timed-out"] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/** Something people following a run should hear about. */
export interface Notice {
  kind: NoticeKind;
  runId: string;
  pipeline: string;
  repo: string;
  sha: string;
  branch?: string;
  stageName?: string;
  environment?: string;
  error?: string;
  runUrl: string;
}

/** What a message says about the run it is about: an approval request's or a notice's facts. */
export type RunFacts = Pick<ApprovalRequest, "repo" | "sha" | "pipeline"> &
  Partial<Pick<ApprovalRequest, "provider" | "branch" | "tag" | "stageName" | "environment" | "pusher">>;

/** One way of reaching people. An implementation may throw; fanOut is what keeps that from a run. */
export interface ChatNotifier {
  approvalRequested(req: ApprovalRequest): Promise<void>;
  notify(notice: Notice): Promise<void>;
}
