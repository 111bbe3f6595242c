import type { PushEvent as GitHubPushPayload } from "@octokit/webhooks-types";
import * as z from "../zod-mini.ts";
import type { SourceEvent } from "./port.ts";
import { BadPayloadError } from "./errors.ts";
import { parseOrThrow, branchOrTag, email, ZERO_SHA } from "./shape.ts";

export interface DeliveryHeaders {
  /** X-GitHub-Event. */
  event: string;
  /** X-GitHub-Delivery. */
  delivery: string;
}

const sha = z.string().check(z.regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, "expected a 40 or 64 character lowercase hex sha"));

/** Only the fields Hoist reads: GitHub adds fields often, and those must not fail a delivery. */
const GitHubPush = z.object({
  ref: z.string().check(z.startsWith("refs/")),
  after: sha,
  deleted: z.optional(z.boolean()),
  repository: z.object({
    full_name: z.string().check(z.minLength(1)),
    id: z.number().check(z.int()),
    clone_url: z.string().check(z.minLength(1)),
  }),
  pusher: z.optional(z.object({ name: z.string(), email: z.optional(z.nullable(z.string())) })),
  sender: z.optional(z.object({ login: z.string() })),
  head_commit: z.optional(z.nullable(z.object({ id: sha }))),
});

/**
 * The fields above, typed by Octokit's published webhook types. `pushFields`
 * returns this type, so the schema failing to agree with GitHub's documented
 * payload is a compile error.
 */
type UsedFields = Pick<GitHubPushPayload, "ref" | "after"> & {
  deleted?: GitHubPushPayload["deleted"];
  repository: Pick<GitHubPushPayload["repository"], "full_name" | "id" | "clone_url">;
  pusher?: Pick<GitHubPushPayload["pusher"], "name"> & { email?: GitHubPushPayload["pusher"]["email"] };
  sender?: Pick<GitHubPushPayload["sender"], "login">;
  head_commit?: Pick<NonNullable<GitHubPushPayload["head_commit"]>, "id"> | null;
};

function pushFields(body: unknown): UsedFields {
  return parseOrThrow(GitHubPush, body, "invalid GitHub push payload");
}

const FORM = "application/x-www-form-urlencoded";

/**
 * The JSON payload of a GitHub webhook body. A webhook's content type is
 * `application/json` or, GitHub's default, `application/x-www-form-urlencoded` with the
 * JSON in the `payload` field
 * (https://docs.github.com/en/webhooks/using-webhooks/creating-webhooks#content-type).
 * The signature covers the raw bytes, so the caller verifies it before calling this.
 */
export function decodeGitHubBody(raw: Uint8Array, contentType: string | null | undefined): unknown {
  const text = new TextDecoder().decode(raw);
  const mediaType = (contentType ?? "").split(";")[0]?.trim().toLowerCase();
  if (mediaType !== FORM) return parseJson(text, "body");
  const payload = new URLSearchParams(text).get("payload");
  if (payload === null) throw new BadPayloadError("invalid GitHub webhook body", [`payload: missing from the ${FORM} body`]);
  return parseJson(payload, "payload");
}

function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadPayloadError("invalid GitHub webhook body", [`${field}: not valid JSON (${(err as Error).message})`]);
  }
}

/**
 * A delivery as Hoist understands it: a push, a ping, or any other event (every event
 * GitHub sends has a name in X-GitHub-Event), acknowledged and ignored. Only a push's
 * body is read; a push that lacks a field Hoist needs is a BadPayloadError naming it.
 */
export function parseGitHubDelivery(headers: DeliveryHeaders, body: unknown): SourceEvent {
  const { event, delivery } = headers;
  if (event === "ping") return { kind: "ping", delivery };
  if (event !== "push") return { kind: "ignored", delivery, reason: `event ${event} is not handled` };

  const p = pushFields(body);
  const deleted = p.deleted === true || ZERO_SHA.test(p.after);
  return {
    kind: "push",
    delivery,
    push: {
      provider: "github",
      repo: { provider: "github", fullName: p.repository.full_name, id: p.repository.id, cloneUrl: p.repository.clone_url },
      ref: p.ref,
      ...branchOrTag(p.ref),
      // For an annotated tag `after` names the tag object; head_commit is the commit it points to.
      sha: deleted ? p.after : (p.head_commit?.id ?? p.after),
      deleted,
      ...actor(p.pusher?.name ?? p.sender?.login),
      ...email(p.pusher?.email),
    },
  };
}

function actor(name: string | undefined): { actor?: string } {
  return name ? { actor: name } : {};
}
