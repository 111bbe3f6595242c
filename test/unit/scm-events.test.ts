import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { WebhookDefinition } from "@octokit/webhooks-examples";
import type { PushEvent as GitHubPushPayload } from "@octokit/webhooks-types";
import { describe, expect, it } from "vitest";
import { BadPayloadError } from "../../lib/scm/errors.ts";
import { parseGitHubDelivery } from "../../lib/scm/github-events.ts";
import { parseGitLabDelivery } from "../../lib/scm/gitlab-events.ts";
import type { PushEvent, SourceEvent } from "../../lib/scm/port.ts";

// The package's main is a JSON file whose typings declare an ES default export that
// NodeNext cannot see through, so it is loaded as the CommonJS JSON it is.
const examples = createRequire(import.meta.url)("@octokit/webhooks-examples") as WebhookDefinition[];

function examplesOf(name: string): unknown[] {
  const definition = examples.find((d) => d.name === name);
  if (!definition || definition.examples.length === 0) throw new Error(`no ${name} examples in @octokit/webhooks-examples`);
  return definition.examples;
}

const pushExamples = examplesOf("push") as GitHubPushPayload[];
const gitlabPush: unknown = JSON.parse(readFileSync(new URL("../../events/gitlab/push.json", import.meta.url), "utf8"));
const gitlabTagPush: unknown = JSON.parse(readFileSync(new URL("../../events/gitlab/tag_push.json", import.meta.url), "utf8"));

function pushOf(event: SourceEvent): PushEvent {
  if (event.kind !== "push") throw new Error(`expected a push, got ${event.kind}`);
  return event.push;
}

function expectBadPayload(parse: () => unknown, field: string): void {
  let caught: unknown;
  try {
    parse();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BadPayloadError);
  const err = caught as BadPayloadError;
  expect(err.message).toContain(field);
  expect(err.issues.some((issue) => issue.startsWith(`${field}:`))).toBe(true);
}

describe("parseGitHubDelivery", () => {
  it("has push examples to check", () => {
    expect(pushExamples.length).toBeGreaterThan(0);
  });

  describe.each(pushExamples.map((payload, i) => [`${i}: ${payload.ref} ${payload.after.slice(0, 7)}`, payload] as const))(
    "push example %s",
    (_label, payload) => {
      it("parses to a Hoist push", () => {
        const event = parseGitHubDelivery({ event: "push", delivery: "d-1" }, payload);
        expect(event.kind).toBe("push");
        expect(event.delivery).toBe("d-1");
        const push = pushOf(event);
        const deleted = payload.deleted || /^0+$/.test(payload.after);
        expect(push).toEqual({
          provider: "github",
          repo: {
            provider: "github",
            fullName: payload.repository.full_name,
            id: payload.repository.id,
            cloneUrl: payload.repository.clone_url,
          },
          ref: payload.ref,
          ...(payload.ref.startsWith("refs/heads/") ? { branch: payload.ref.slice(11) } : {}),
          ...(payload.ref.startsWith("refs/tags/") ? { tag: payload.ref.slice(10) } : {}),
          sha: deleted ? payload.after : (payload.head_commit?.id ?? payload.after),
          deleted,
          actor: payload.pusher.name,
          ...(payload.pusher.email ? { actorEmail: payload.pusher.email } : {}),
        });
        expect(push.branch ?? push.tag).toBeTruthy();
        expect(push.sha).toMatch(/^[0-9a-f]{40}$/);
      });
    },
  );

  it("tells branch pushes, tag pushes and deletions apart", () => {
    const pushes = pushExamples.map((p) => pushOf(parseGitHubDelivery({ event: "push", delivery: "d" }, p)));
    expect(pushes.some((p) => p.branch === "master" && !p.deleted)).toBe(true);
    expect(pushes.some((p) => p.tag === "simple-tag" && !p.deleted)).toBe(true);
    const deletion = pushes.find((p) => p.deleted);
    expect(deletion?.sha).toBe("0".repeat(40));
  });

  it("treats an all-zero after as a deletion even without deleted: true", () => {
    const base = pushExamples.find((p) => !p.deleted);
    const push = pushOf(
      parseGitHubDelivery({ event: "push", delivery: "d" }, { ...base, deleted: false, after: "0".repeat(40), head_commit: null }),
    );
    expect(push.deleted).toBe(true);
  });

  it("answers ping examples with ping", () => {
    for (const payload of examplesOf("ping")) {
      expect(parseGitHubDelivery({ event: "ping", delivery: "p-1" }, payload)).toEqual({ kind: "ping", delivery: "p-1" });
    }
  });

  it("ignores events it does not handle", () => {
    const [issue] = examplesOf("issues");
    expect(parseGitHubDelivery({ event: "issues", delivery: "i-1" }, issue)).toEqual({
      kind: "ignored",
      delivery: "i-1",
      reason: "event issues is not handled",
    });
  });

  describe("malformed push bodies throw BadPayloadError naming the field", () => {
    const base = pushExamples.find((p) => !p.deleted) as GitHubPushPayload;
    const parse = (body: unknown) => () => parseGitHubDelivery({ event: "push", delivery: "d" }, body);

    it("missing repository", () => {
      const { repository: _omitted, ...rest } = base;
      expectBadPayload(parse(rest), "repository");
    });
    it("ref not a string", () => expectBadPayload(parse({ ...base, ref: 42 }), "ref"));
    it("after not hex", () => expectBadPayload(parse({ ...base, after: "not-a-sha" }), "after"));
    it("repository.full_name missing", () =>
      expectBadPayload(parse({ ...base, repository: { ...base.repository, full_name: undefined } }), "repository.full_name"));
    it("a body that is not an object", () => expectBadPayload(parse("push"), "(body)"));
  });
});

describe("parseGitLabDelivery", () => {
  it("parses the documented Push Hook", () => {
    const event = parseGitLabDelivery({ event: "Push Hook", delivery: "g-1" }, gitlabPush);
    expect(event).toEqual({
      kind: "push",
      delivery: "g-1",
      push: {
        provider: "gitlab",
        repo: { provider: "gitlab", fullName: "mike/diaspora", id: 15, cloneUrl: "http://example.com/mike/diaspora.git" },
        ref: "refs/heads/master",
        branch: "master",
        sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        deleted: false,
        actor: "jsmith",
        actorEmail: "john@example.com",
      },
    });
  });

  it("parses the documented Tag Push Hook", () => {
    const push = pushOf(parseGitLabDelivery({ event: "Tag Push Hook", delivery: "g-2" }, gitlabTagPush));
    expect(push).toMatchObject({
      provider: "gitlab",
      repo: { fullName: "jsmith/example", id: 1, cloneUrl: "http://example.com/jsmith/example.git" },
      ref: "refs/tags/v1.0.0",
      tag: "v1.0.0",
      sha: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
      deleted: false,
      // The documented tag payload has no user_username; the display name stands in.
      actor: "John Smith",
    });
    expect(push.branch).toBeUndefined();
  });

  it("marks a branch deletion (after all zeros, checkout_sha null) as deleted", () => {
    const deletion = { ...(gitlabPush as object), after: "0".repeat(40), checkout_sha: null, commits: [], total_commits_count: 0 };
    const push = pushOf(parseGitLabDelivery({ event: "Push Hook", delivery: "g-3" }, deletion));
    expect(push.deleted).toBe(true);
    expect(push.sha).toBe("0".repeat(40));
    expect(push.branch).toBe("master");
  });

  it("marks a tag deletion as deleted", () => {
    const deletion = { ...(gitlabTagPush as object), before: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", after: "0".repeat(40), checkout_sha: null };
    expect(pushOf(parseGitLabDelivery({ event: "Tag Push Hook", delivery: "g-4" }, deletion)).deleted).toBe(true);
  });

  it("ignores other kinds", () => {
    expect(parseGitLabDelivery({ event: "Issue Hook", delivery: "g-5" }, { object_kind: "issue" })).toEqual({
      kind: "ignored",
      delivery: "g-5",
      reason: "event Issue Hook is not handled",
    });
  });

  it("throws BadPayloadError naming the field for malformed hooks", () => {
    const parse = (body: unknown) => () => parseGitLabDelivery({ event: "Push Hook", delivery: "g" }, body);
    expectBadPayload(parse({ ...(gitlabPush as object), after: "xyz" }), "after");
    expectBadPayload(parse({ ...(gitlabPush as object), project: undefined }), "project");
    expectBadPayload(parse({ ...(gitlabPush as object), ref: 7 }), "ref");
    expectBadPayload(parse({ ref: "refs/heads/main" }), "object_kind");
  });
});
