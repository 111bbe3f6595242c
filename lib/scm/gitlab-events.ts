import { z } from "zod";
import type { SourceEvent } from "./port.ts";
import { parseOrThrow, splitRef, ZERO_SHA } from "./shape.ts";

export interface GitLabDeliveryHeaders {
  /** X-Gitlab-Event, e.g. "Push Hook". */
  event: string;
  /** X-Gitlab-Event-UUID (or X-Gitlab-Webhook-UUID). */
  delivery: string;
}

const sha = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, "expected a 40 or 64 character lowercase hex sha");

/** Fields Hoist reads from GitLab's "Push Hook" and "Tag Push Hook" payloads. */
const refUpdate = {
  ref: z.string().startsWith("refs/"),
  before: sha,
  after: sha,
  /** Null when the ref was deleted; for an annotated tag, the commit the tag points to. */
  checkout_sha: sha.nullable(),
  user_name: z.string().optional(),
  user_username: z.string().optional(),
  project: z.object({
    id: z.number().int(),
    path_with_namespace: z.string().min(1),
    git_http_url: z.string().min(1),
  }),
};

const GitLabHook = z.discriminatedUnion("object_kind", [
  z.object({ object_kind: z.literal("push"), ...refUpdate }),
  z.object({ object_kind: z.literal("tag_push"), ...refUpdate }),
]);
export type GitLabHook = z.infer<typeof GitLabHook>;

const HANDLED = new Set(["push", "tag_push"]);
const Kind = z.object({ object_kind: z.string() });

export function parseGitLabDelivery(headers: GitLabDeliveryHeaders, body: unknown): SourceEvent {
  const { event, delivery } = headers;
  const { object_kind } = parseOrThrow(Kind, body, "invalid GitLab webhook payload");
  if (!HANDLED.has(object_kind)) {
    return { kind: "ignored", delivery, reason: `event ${event || object_kind} is not handled` };
  }

  const p = parseOrThrow(GitLabHook, body, `invalid GitLab ${object_kind} payload`);
  const deleted = ZERO_SHA.test(p.after);
  const actor = p.user_username ?? p.user_name;
  return {
    kind: "push",
    delivery,
    push: {
      provider: "gitlab",
      repo: {
        provider: "gitlab",
        fullName: p.project.path_with_namespace,
        id: p.project.id,
        cloneUrl: p.project.git_http_url,
      },
      ref: p.ref,
      ...splitRef(p.ref),
      sha: deleted ? p.after : (p.checkout_sha ?? p.after),
      deleted,
      ...(actor ? { actor } : {}),
    },
  };
}
