import type { PushEvent as GitHubPushPayload } from "@octokit/webhooks-types";
import { z } from "zod";
import type { SourceEvent } from "./port.ts";
import { parseOrThrow, splitRef, ZERO_SHA } from "./shape.ts";

export interface DeliveryHeaders {
  /** X-GitHub-Event. */
  event: string;
  /** X-GitHub-Delivery. */
  delivery: string;
}

const sha = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, "expected a 40 or 64 character lowercase hex sha");

/** Only the fields Hoist reads: GitHub adds fields often, and those must not fail a delivery. */
const GitHubPush = z.object({
  ref: z.string().startsWith("refs/"),
  after: sha,
  deleted: z.boolean().optional(),
  repository: z.object({
    full_name: z.string().min(1),
    id: z.number().int(),
    clone_url: z.string().min(1),
  }),
  pusher: z.object({ name: z.string() }).optional(),
  sender: z.object({ login: z.string() }).optional(),
  head_commit: z.object({ id: sha }).nullable().optional(),
});

/**
 * The fields above, typed by Octokit's published webhook types. `pushFields`
 * returns this type, so the schema failing to agree with GitHub's documented
 * payload is a compile error.
 */
type UsedFields = Pick<GitHubPushPayload, "ref" | "after"> & {
  deleted?: GitHubPushPayload["deleted"];
  repository: Pick<GitHubPushPayload["repository"], "full_name" | "id" | "clone_url">;
  pusher?: Pick<GitHubPushPayload["pusher"], "name">;
  sender?: Pick<GitHubPushPayload["sender"], "login">;
  head_commit?: Pick<NonNullable<GitHubPushPayload["head_commit"]>, "id"> | null;
};

function pushFields(body: unknown): UsedFields {
  return parseOrThrow(GitHubPush, body, "invalid GitHub push payload");
}

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
      ...splitRef(p.ref),
      // For an annotated tag `after` names the tag object; head_commit is the commit it points to.
      sha: deleted ? p.after : (p.head_commit?.id ?? p.after),
      deleted,
      ...actor(p.pusher?.name ?? p.sender?.login),
    },
  };
}

function actor(name: string | undefined): { actor?: string } {
  return name ? { actor: name } : {};
}
