import * as z from "zod";

/**
 * Approval gates: what a stage needs before it may start, and the decisions people made.
 * Pure: the rule is merged from the stage's `approval:` and its environment's protection by
 * the worker, and each decision is judged here, so the API, Slack and robot links all decide
 * by the same rules.
 */

export const VIAS = ["slack", "robot", "api", "cli"] as const;
export const Via = z.enum(VIAS);
export type Via = z.infer<typeof Via>;

/** Longest wait for approvals: a run parked longer is forgotten, not gated. */
export const MAX_APPROVAL_TIMEOUT_SEC = 30 * 24 * 3600;
export const DEFAULT_APPROVAL_TIMEOUT_SEC = 24 * 3600;
/** Approvers a rule names, and decisions a gate keeps (refused ones included): bounds the run record. */
export const MAX_APPROVERS = 32;
export const MAX_DECISIONS = 16;

const identity = z.string().min(1).max(200);

/** What a stage's `approval:` or an environment's protection asks for. */
export const ApprovalAsk = z
  .object({
    /** Who may decide: chat user ids (`slack:U0123`), emails, or names; none named: anyone who can reach a decision. */
    approvers: z.array(identity).max(MAX_APPROVERS).default([]),
    /** Distinct approvals needed. */
    count: z.number().int().min(1).max(MAX_APPROVERS).default(1),
    timeoutSec: z.number().int().min(60).max(MAX_APPROVAL_TIMEOUT_SEC).default(DEFAULT_APPROVAL_TIMEOUT_SEC),
    /** Whether whoever started the run may approve it. */
    selfApproval: z.boolean().default(true),
  })
  .strict();
export type ApprovalAsk = z.output<typeof ApprovalAsk>;

/** The gate a stage waits at, fixed when the stage comes up. */
export const ApprovalRule = z.object({
  approvers: z.array(identity),
  count: z.number().int().min(1),
  expiresAt: z.number(),
  selfApproval: z.boolean(),
  /** Where the rule comes from: `.hoist.yml`, `environment production`. */
  from: z.array(z.string()),
});
export type ApprovalRule = z.infer<typeof ApprovalRule>;

export const Decision = z.object({
  by: identity,
  via: Via,
  at: z.number(),
  approve: z.boolean(),
  reason: z.string().max(500).optional(),
  /** Why the decision did not count (not an approver, the pusher, the gate already closed). */
  refused: z.string().max(400).optional(),
});
export type Decision = z.infer<typeof Decision>;

export const Gate = z.object({
  openedAt: z.number(),
  /** Absent: the stage needs no approval. */
  rule: ApprovalRule.optional(),
  decisions: z.array(Decision),
});
export type Gate = z.infer<typeof Gate>;

export type GateState = "open" | "waiting" | "approved" | "rejected" | "expired";

/** Where a gate stands; expiry is judged by the time an event brings (the core has no clock). */
export function gateState(gate: Gate | undefined, expiredBy?: number): GateState | undefined {
  if (!gate) return undefined;
  if (!gate.rule) return "open";
  const counted = gate.decisions.filter((d) => !d.refused);
  if (counted.some((d) => !d.approve)) return "rejected";
  if (counted.length >= gate.rule.count) return "approved";
  if (expiredBy !== undefined && expiredBy >= gate.rule.expiresAt) return "expired";
  return "waiting";
}

/** Stricter of what the file and the environment ask: a commit can add a gate, never weaken the environment's. */
export function mergeAsks(asks: { from: string; ask: ApprovalAsk }[], openedAt: number): ApprovalRule | { error: string } | undefined {
  if (asks.length === 0) return undefined;
  const named = asks.filter((a) => a.ask.approvers.length > 0);
  let approvers: string[] = [];
  if (named.length > 0) {
    const lists = named.map((a) => new Set(a.ask.approvers.map(norm)));
    approvers = named[0]!.ask.approvers.filter((p) => lists.every((l) => l.has(norm(p))));
    if (approvers.length === 0) return { error: `no approver is on every list (${named.map((a) => `${a.from}: ${a.ask.approvers.join(", ")}`).join("; ")}): nobody could approve` };
  }
  const count = Math.max(...asks.map((a) => a.ask.count));
  if (approvers.length > 0 && count > approvers.length)
    return { error: `${count} approvals are needed and only ${approvers.length} people may give one (${approvers.join(", ")})` };
  return {
    approvers,
    count,
    expiresAt: openedAt + Math.min(...asks.map((a) => a.ask.timeoutSec)) * 1000,
    selfApproval: asks.every((a) => a.ask.selfApproval),
    from: asks.map((a) => a.from),
  };
}

export interface DecisionInput {
  by: string;
  /** Every name the decider goes by (chat id, user name, email): matched against approvers and the pusher. */
  identities: string[];
  via: Via;
  at: number;
  approve: boolean;
  reason?: string | undefined;
}

/** One person's decision as Slack, robot links, the API and the CLI bring it to a run (lib/runs/approve.ts records it). */
export interface DecisionRequest {
  runId: string;
  /** The stage waiting; default: the one the run waits at. */
  stage?: number;
  approve: boolean;
  /** Who decides, as the decision records it (`slack:U0123`, an email, a name). */
  by: string;
  /** Every other name they go by (chat user name, email): matched against approvers and the pusher. */
  identities?: string[];
  via: Via;
  reason?: string;
}

export type DecideResult =
  | { outcome: "accepted"; stage: number; waiting: boolean; summary: string }
  | { outcome: "refused"; stage: number; reason: string }
  | { outcome: "duplicate"; stage: number; summary: string }
  | { outcome: "not-waiting"; reason: string }
  | { outcome: "missing" };

/** Why a decision does not count at this gate, or undefined when it does. `starter`: the names of whoever started the run. */
export function refusal(gate: Gate, input: DecisionInput, starter: readonly string[]): string | undefined {
  const rule = gate.rule;
  if (!rule) return "this stage needs no approval";
  const state = gateState(gate, input.at);
  if (state !== "waiting") return `the approval is ${state === "expired" ? "past its deadline" : `already ${state}`}`;
  const names = new Set([input.by, ...input.identities].map(norm));
  if (rule.approvers.length > 0 && !rule.approvers.some((a) => names.has(norm(a))))
    return `${input.by} is not an approver here (approvers: ${rule.approvers.join(", ")})`;
  if (!rule.selfApproval && starter.some((n) => names.has(norm(n)))) return `${input.by} started this run, and this gate refuses self-approval`;
  return undefined;
}

/** Whether `input` comes from someone who has decided at this gate already (one decision per person). */
export function alreadyDecided(gate: Gate, input: DecisionInput): boolean {
  const names = new Set([input.by, ...input.identities].map(norm));
  return gate.decisions.some((d) => !d.refused && names.has(norm(d.by)));
}

/** One line on where a gate stands: "approved by alice, bob", "1 of 2 approvals (alice)". */
export function gateSummary(gate: Gate, state: GateState): string {
  const counted = gate.decisions.filter((d) => !d.refused);
  const approvedBy = counted.filter((d) => d.approve).map((d) => d.by);
  const rejection = counted.find((d) => !d.approve);
  switch (state) {
    case "open":
      return "no approval needed";
    case "approved":
      return `approved by ${approvedBy.join(", ")}`;
    case "rejected":
      return `rejected by ${rejection?.by}${rejection?.reason ? `: ${rejection.reason}` : ""}`;
    case "expired":
      return `approval timed out with ${approvedBy.length} of ${gate.rule?.count} approvals${approvedBy.length ? ` (${approvedBy.join(", ")})` : ""}`;
    case "waiting":
      return `waiting for ${gate.rule?.count} approval${gate.rule?.count === 1 ? "" : "s"}${gate.rule?.approvers.length ? ` from ${gate.rule.approvers.join(", ")}` : ""}: ${approvedBy.length} so far${approvedBy.length ? ` (${approvedBy.join(", ")})` : ""}`;
  }
}

function norm(name: string): string {
  return name.trim().toLowerCase();
}
