import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { WebhookDefinition } from "@octokit/webhooks-examples";

/**
 * Every real webhook kind Hoist can be sent, as the provider sends it: all of
 * @octokit/webhooks-examples (every GitHub event) and GitLab's documented example of every
 * hook kind (events/gitlab/, events/gitlab/system/), with the headers that name them and
 * what Hoist must make of each. Shared by the parse-layer test and the HTTP test: a case
 * is a 2xx (push, ping, ignored) or a 400 whose message names `reason`, never a 5xx.
 */
export interface EventKindCase {
  /** e.g. `github pull_request #3`, `gitlab note_commit`, `gitlab system/user_create`. */
  name: string;
  provider: "github" | "gitlab";
  /** Lower-case header names, values as the provider sends them; no signature or token. */
  headers: Record<string, string>;
  body: unknown;
  expected: { kind: "push" | "ping" | "ignored" } | { kind: "bad"; reason: string };
}

// The package's main is a JSON file whose typings declare an ES default export that
// NodeNext cannot see through, so it is loaded as the CommonJS JSON it is.
const githubExamples = createRequire(import.meta.url)("@octokit/webhooks-examples") as WebhookDefinition[];

function githubCase(event: string, i: number, body: unknown, expected: EventKindCase["expected"]): EventKindCase {
  return {
    name: `github ${event} #${i}`,
    provider: "github",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": `72d3162e-cc78-11e3-81ab-4c9367dc0958-${event}-${i}`,
      "x-github-hook-id": "292430182",
      "user-agent": "GitHub-Hookshot/044aadd",
    },
    body,
    expected,
  };
}

/** Every example of every event in @octokit/webhooks-examples. */
export const githubCases: EventKindCase[] = githubExamples.flatMap((definition) =>
  definition.examples.map((body, i) =>
    githubCase(definition.name, i, body, { kind: definition.name === "push" ? "push" : definition.name === "ping" ? "ping" : "ignored" }),
  ),
);

/** X-Gitlab-Event of each recorded file, by its name (https://docs.gitlab.com/user/project/integrations/webhook_events/). */
const GITLAB_HEADERS: [RegExp, string][] = [
  [/^system\//, "System Hook"],
  [/^push$/, "Push Hook"],
  [/^tag_push$/, "Tag Push Hook"],
  [/^(issue|work_item)$/, "Issue Hook"],
  [/^note_/, "Note Hook"],
  [/^merge_request$/, "Merge Request Hook"],
  [/^wiki_page$/, "Wiki Page Hook"],
  [/^pipeline$/, "Pipeline Hook"],
  [/^job$/, "Job Hook"],
  [/^deployment$/, "Deployment Hook"],
  [/^member_/, "Member Hook"],
  [/^project_/, "Project Hook"],
  [/^subgroup_/, "Subgroup Hook"],
  [/^feature_flag$/, "Feature Flag Hook"],
  [/^release$/, "Release Hook"],
  [/^milestone$/, "Milestone Hook"],
  [/^emoji$/, "Emoji Hook"],
  [/^resource_access_token_/, "Resource Access Token Hook"],
  [/^vulnerability$/, "Vulnerability Hook"],
];

const gitlabDir = new URL("../../events/gitlab/", import.meta.url);

/** The recorded GitLab files, as `kind` or `system/kind`. */
export function gitlabFiles(): string[] {
  return readdirSync(gitlabDir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.replace(/\.json$/, ""))
    .sort();
}

export function gitlabEventHeader(file: string): string {
  const hit = GITLAB_HEADERS.find(([pattern]) => pattern.test(file));
  if (!hit) throw new Error(`events/gitlab/${file}.json: no X-Gitlab-Event known for it; add one to GITLAB_HEADERS`);
  return hit[1];
}

function gitlabHeaders(event: string, id: string): Record<string, string> {
  return {
    "content-type": "application/json",
    "x-gitlab-event": event,
    "x-gitlab-event-uuid": id,
    "x-gitlab-webhook-uuid": "f9c4b3a0-2b9e-4b5e-9d2a-0c8f1e3b7a51",
    "idempotency-key": id,
    "x-gitlab-instance": "https://gitlab.example.com",
    "user-agent": "GitLab/18.2.0",
  };
}

export function readGitLabEvent(file: string): unknown {
  return JSON.parse(readFileSync(new URL(`${file}.json`, gitlabDir), "utf8"));
}

/** Every recorded GitLab hook: project and group hooks' pushes run, all else is acknowledged. */
export const gitlabCases: EventKindCase[] = gitlabFiles().map((file, i) => ({
  name: `gitlab ${file}`,
  provider: "gitlab",
  headers: gitlabHeaders(gitlabEventHeader(file), `3c3e5a3e-4d5b-4f7a-9a7e-${String(i).padStart(12, "0")}`),
  body: readGitLabEvent(file),
  expected: { kind: file === "push" || file === "tag_push" ? "push" : "ignored" },
}));

function githubPush(): Record<string, unknown> {
  const [push] = githubExamples.find((d) => d.name === "push")?.examples ?? [];
  return { ...(push as Record<string, unknown>) };
}

/** Bodies that are not what their event promises: a 400 naming the field, never a 5xx. */
export const badCases: EventKindCase[] = [
  githubCase("push", 900, { ...githubPush(), after: "not-a-sha" }, { kind: "bad", reason: "after" }),
  githubCase("push", 901, { ...githubPush(), repository: undefined }, { kind: "bad", reason: "repository" }),
  githubCase("push", 902, ["not", "an", "object"], { kind: "bad", reason: "(body)" }),
  {
    name: "gitlab push without project",
    provider: "gitlab",
    headers: gitlabHeaders("Push Hook", "bad-1"),
    body: { ...(readGitLabEvent("push") as object), project: undefined },
    expected: { kind: "bad", reason: "project" },
  },
  {
    name: "gitlab body naming no kind",
    provider: "gitlab",
    headers: gitlabHeaders("Push Hook", "bad-2"),
    body: { ref: "refs/heads/main" },
    expected: { kind: "bad", reason: "object_kind" },
  },
];

export const eventKindCases: EventKindCase[] = [...githubCases, ...gitlabCases, ...badCases];

/** A GitHub body as a hook with content type `application/x-www-form-urlencoded` sends it. */
export function githubFormBody(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}
