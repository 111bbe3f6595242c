import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * Real recorded webhook payloads (events/), rewritten to point at a local repository and
 * commit: what GitHub or GitLab would send for a push to that repository.
 */

const eventsDir = fileURLToPath(new URL("../../events/", import.meta.url));
const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(eventsDir + file, "utf8")) as Record<string, unknown>;

export interface PushTarget {
  path: string;
  sha: string;
  /** refs/heads/<branch> or refs/tags/<tag>. */
  ref: string;
  fullName?: string;
}

/** A GitHub `push` payload (from @octokit/webhooks-examples, stored in events/github/push.json). */
export function githubPush(t: PushTarget): string {
  const p = load("github/push.json") as { repository: Record<string, unknown>; head_commit: Record<string, unknown> } & Record<string, unknown>;
  p.ref = t.ref;
  p.after = t.sha;
  p.deleted = false;
  p.head_commit = { ...p.head_commit, id: t.sha };
  p.repository = { ...p.repository, full_name: t.fullName ?? "demo/app", name: (t.fullName ?? "demo/app").split("/").at(-1), clone_url: `file://${t.path}` };
  return JSON.stringify(p);
}

/** A GitLab "Push Hook" payload in GitLab's documented format (events/gitlab/push.json). */
export function gitlabPush(t: PushTarget): string {
  const p = load("gitlab/push.json") as { project: Record<string, unknown> } & Record<string, unknown>;
  p.ref = t.ref;
  p.after = t.sha;
  p.checkout_sha = t.sha;
  p.project = { ...p.project, path_with_namespace: t.fullName ?? "demo/app", git_http_url: `file://${t.path}` };
  return JSON.stringify(p);
}
