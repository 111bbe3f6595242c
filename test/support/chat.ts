import { readFileSync } from "node:fs";
import type { ApprovalRequest, Notice } from "../../lib/chat/port.ts";
import { buttonValue } from "../../lib/chat/slack-payload.ts";
import { signSlack } from "../../lib/chat/slack-signature.ts";

/** A run id as Hoist makes them (lib/runs/ids.ts): r and 24 base32 letters and digits. */
export const RUN_ID = "r0123456789abcdefghjkmnpq";

export function approvalRequest(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    runId: RUN_ID,
    stage: 3,
    stageName: "deploy",
    pipeline: "main",
    repo: "acme/shop",
    provider: "github",
    branch: "main",
    sha: "0123456789abcdef0123456789abcdef01234567",
    pusher: "carol",
    environment: "production",
    approvers: ["ops-lead", "alice"],
    count: 2,
    expiresAt: Date.UTC(2030, 0, 1, 12, 0),
    runUrl: `https://hoist.example.com/runs/${RUN_ID}`,
    ...over,
  };
}

export function notice(over: Partial<Notice> = {}): Notice {
  return {
    kind: "failed",
    runId: RUN_ID,
    pipeline: "main",
    repo: "acme/shop",
    sha: "0123456789abcdef0123456789abcdef01234567",
    branch: "main",
    stageName: "test",
    error: "npm test exited with 1",
    runUrl: `https://hoist.example.com/runs/${RUN_ID}`,
    ...over,
  };
}

/** Slack's block_actions payload for a click on an approval button, as recorded in events/slack/. */
const BLOCK_ACTIONS = readFileSync(new URL("../../events/slack/block-actions.json", import.meta.url), "utf8");

export interface Click {
  runId?: string;
  stage?: number;
  approve?: boolean;
  userId?: string;
  responseUrl?: string;
}

/** The payload of a click on the approve (or reject) button of `runId`'s stage. */
export function blockActions(click: Click = {}): Record<string, unknown> {
  const payload = JSON.parse(BLOCK_ACTIONS) as Record<string, unknown> & { user: { id: string }; actions: { value: string; action_id: string }[] };
  const approve = click.approve ?? true;
  payload.actions[0]!.value = buttonValue(click.runId ?? RUN_ID, click.stage ?? 3, approve);
  payload.actions[0]!.action_id = approve ? "hoist.approve" : "hoist.reject";
  if (click.userId) payload.user.id = click.userId;
  if (click.responseUrl) payload.response_url = click.responseUrl;
  return payload;
}

/** The body Slack posts: the payload JSON in a form field. */
export function formBody(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** Headers as Slack signs a request with `secret` at `timestampSec`. */
export async function slackHeaders(body: string, secret: string, timestampSec: number): Promise<Record<string, string>> {
  const timestamp = String(timestampSec);
  return { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": timestamp, "x-slack-signature": await signSlack(body, timestamp, secret) };
}
