import * as z from "zod";
import { BadInputError } from "../errors.ts";
import { RunId } from "../pipeline/names.ts";
import { MAX_STAGES } from "../pipeline/size.ts";

/**
 * What Slack posts to the interactivity URL when someone clicks an approval button: a form
 * body whose `payload` field is the `block_actions` JSON
 * (https://api.slack.com/reference/interaction-payloads/block-actions). Only the fields Hoist
 * reads are kept, each bounded; anything else in the payload is dropped unread.
 */

/** The button's `value`: `<run id>|<stage index>|approve` or `...|reject`; ours are under 40 characters. */
export const ACTION_VALUE_MAX = 100;

export interface ButtonValue {
  runId: string;
  stage: number;
  approve: boolean;
}

/** The value an approval button carries; parseButtonValue reads it back. */
export function buttonValue(runId: string, stage: number, approve: boolean): string {
  return `${runId}|${stage}|${approve ? "approve" : "reject"}`;
}

export function parseButtonValue(value: string): ButtonValue | undefined {
  const [runId, stage, decision, ...rest] = value.split("|");
  if (rest.length > 0 || !RunId.safeParse(runId).success || !/^(0|[1-9][0-9]?)$/.test(stage ?? "") || Number(stage) >= MAX_STAGES) return undefined;
  if (decision !== "approve" && decision !== "reject") return undefined;
  return { runId: runId!, stage: Number(stage), approve: decision === "approve" };
}

const slackId = z.string().regex(/^[A-Z0-9]{1,32}$/, "not a Slack id");
const name = z.string().min(1).max(200);

export const BlockActionsPayload = z.object({
  type: z.literal("block_actions"),
  user: z.object({ id: slackId, username: name.optional(), name: name.optional(), team_id: slackId.optional() }),
  actions: z
    .array(
      z.object({
        action_id: z.string().min(1).max(255),
        value: z.string().max(ACTION_VALUE_MAX).refine((v) => parseButtonValue(v) !== undefined, "not an approval button's value"),
      }),
    )
    .min(1)
    .max(5),
  container: z.object({ message_ts: z.string().regex(/^\d{1,12}\.\d{1,9}$/), channel_id: slackId }),
  channel: z.object({ id: slackId }),
  // Where it may be posted is the adapter's check (lib/chat/slack.ts); here only that it is a web URL.
  response_url: z.string().max(1000).regex(/^https?:\/\/[^\s]+$/, "not a web URL").pipe(z.string().url()),
  // The message clicked, as Slack holds it: its blocks come back in the update that settles it.
  message: z
    .object({ text: z.string().max(40_000).optional(), blocks: z.array(z.record(z.string(), z.unknown())).max(50).optional() })
    .optional(),
});
export type BlockActionsPayload = z.output<typeof BlockActionsPayload>;

/** The click an interactivity request carries: who clicked which approval button, and where. */
/** An interactivity payload is a few kilobytes, the original message included. */
export const MAX_SLACK_BODY_BYTES = 64 * 1024;

export interface SlackClick extends ButtonValue {
  payload: BlockActionsPayload;
}

/**
 * Reads a verified interactivity body (`payload=<JSON>`, form-encoded). Throws BadInputError
 * naming what is wrong; the message quotes no input.
 */
export function parseSlackClick(rawBody: string): SlackClick {
  const field = new URLSearchParams(rawBody).get("payload");
  if (field === null) throw new BadInputError("the body has no payload field");
  let json: unknown;
  try {
    json = JSON.parse(field);
  } catch {
    throw new BadInputError("payload is not JSON");
  }
  const r = BlockActionsPayload.safeParse(json);
  if (!r.success) throw new BadInputError(`payload is not an approval click: ${r.error.issues.map((i) => `${i.path.join(".") || "payload"}: ${i.message}`).join("; ")}`);
  const value = parseButtonValue(r.data.actions[0]!.value)!;
  return { ...value, payload: r.data };
}
