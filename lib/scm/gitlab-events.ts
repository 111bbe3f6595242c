import * as z from "../zod-mini.ts";
import type { SourceEvent } from "./port.ts";
import { parseOrThrow, branchOrTag, email, ZERO_SHA } from "./shape.ts";

export interface GitLabDeliveryHeaders {
  /** X-Gitlab-Event, e.g. "Push Hook". */
  event: string;
  /** X-Gitlab-Event-UUID (or X-Gitlab-Webhook-UUID). */
  delivery: string;
}

const sha = z.string().check(z.regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, "expected a 40 or 64 character lowercase hex sha"));

/** Fields Hoist reads from GitLab's "Push Hook" and "Tag Push Hook" payloads. */
const refUpdate = {
  ref: z.string().check(z.startsWith("refs/")),
  before: sha,
  after: sha,
  /** Null when the ref was deleted; for an annotated tag, the commit the tag points to. */
  checkout_sha: z.nullable(sha),
  user_name: z.optional(z.string()),
  user_username: z.optional(z.string()),
  user_email: z.optional(z.nullable(z.string())),
  project: z.object({
    id: z.number().check(z.int()),
    path_with_namespace: z.string().check(z.minLength(1)),
    git_http_url: z.string().check(z.minLength(1)),
  }),
};

const GitLabHook = z.discriminatedUnion("object_kind", [
  z.object({ object_kind: z.literal("push"), ...refUpdate }),
  z.object({ object_kind: z.literal("tag_push"), ...refUpdate }),
]);
export type GitLabHook = z.infer<typeof GitLabHook>;

const HANDLED = new Set(["push", "tag_push"]);

/**
 * What names a GitLab hook's kind. Project and group hooks carry `object_kind`; system
 * hooks, and the member, project and subgroup events of group hooks, carry only
 * `event_name` (https://docs.gitlab.com/administration/system_hooks/). A body with
 * neither is not a GitLab hook.
 */
const Kind = z.object({ object_kind: z.optional(z.string()), event_name: z.optional(z.string()) }).check(
  z.refine((k) => k.object_kind !== undefined || k.event_name !== undefined, {
    message: "expected object_kind (or event_name, for system, member, project and subgroup hooks)",
    path: ["object_kind"],
  }),
);

/** X-Gitlab-Event of every system hook, whatever its event. */
const SYSTEM_HOOK = "System Hook";

/**
 * A delivery as Hoist understands it: a push (Push Hook, Tag Push Hook) or any other
 * documented hook, acknowledged and ignored. GitLab disables a hook that keeps answering
 * 4xx, so only a body that is not a GitLab hook at all, or a push without a field Hoist
 * needs, is a BadPayloadError.
 *
 * System hooks' push and tag_push events are ignored too: they fire for every project of
 * the instance and name no project id, and a project that also has its own hook would run
 * twice for one push. Pushes come from project or group webhooks.
 */
export function parseGitLabDelivery(headers: GitLabDeliveryHeaders, body: unknown): SourceEvent {
  const { event, delivery } = headers;
  const kind = parseOrThrow(Kind, body, "invalid GitLab webhook payload");
  const name = kind.object_kind ?? kind.event_name ?? "";
  if (event === SYSTEM_HOOK) {
    return { kind: "ignored", delivery, reason: `system hook event ${name} is not handled: pushes come from project or group webhooks` };
  }
  if (kind.object_kind === undefined || !HANDLED.has(kind.object_kind)) {
    return { kind: "ignored", delivery, reason: `event ${event || name} is not handled` };
  }
  const object_kind = kind.object_kind;

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
      ...branchOrTag(p.ref),
      sha: deleted ? p.after : (p.checkout_sha ?? p.after),
      deleted,
      ...(actor ? { actor } : {}),
      ...email(p.user_email),
    },
  };
}
