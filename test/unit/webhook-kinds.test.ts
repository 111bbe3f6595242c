import { describe, expect, it } from "vitest";
import { BadPayloadError } from "../../lib/scm/errors.ts";
import { decodeGitHubBody, parseGitHubDelivery } from "../../lib/scm/github-events.ts";
import { parseGitLabDelivery } from "../../lib/scm/gitlab-events.ts";
import type { SourceEvent } from "../../lib/scm/port.ts";
import { signGitHub, verifyGitHubSignature } from "../../lib/scm/verify.ts";
import { eventKindCases, type EventKindCase, githubCases, githubFormBody, gitlabCases, gitlabEventHeader, gitlabFiles } from "../support/event-kinds.ts";

const encoder = new TextEncoder();

/** What the parse layer makes of a case, sent as the provider sends it (JSON unless told). */
function parse(c: EventKindCase, raw = encoder.encode(JSON.stringify(c.body)), contentType = c.headers["content-type"]): SourceEvent {
  if (c.provider === "github") {
    const headers = { event: c.headers["x-github-event"] ?? "", delivery: c.headers["x-github-delivery"] ?? "" };
    return parseGitHubDelivery(headers, decodeGitHubBody(raw, contentType));
  }
  const headers = { event: c.headers["x-gitlab-event"] ?? "", delivery: c.headers["idempotency-key"] ?? "" };
  return parseGitLabDelivery(headers, JSON.parse(new TextDecoder().decode(raw)));
}

function expectOutcome(c: EventKindCase, run: () => SourceEvent): void {
  if (c.expected.kind === "bad") {
    const reason = c.expected.reason;
    expect(run).toThrow(BadPayloadError);
    try {
      run();
    } catch (err) {
      expect((err as BadPayloadError).issues.some((issue) => issue.startsWith(`${reason}:`))).toBe(true);
    }
    return;
  }
  const event = run();
  expect(event.kind).toBe(c.expected.kind);
  if (event.kind === "ignored") expect(event.reason).toMatch(/is not handled/);
}

describe("every real event kind parses to push, ping or ignored, or a 400 with its reason", () => {
  it("covers every event of @octokit/webhooks-examples and GitLab's documented hooks", () => {
    const githubEvents = new Set(githubCases.map((c) => c.headers["x-github-event"]));
    // The package lists every GitHub webhook event with examples; 60 or so at the time of writing.
    expect(githubEvents.size).toBeGreaterThan(50);
    for (const event of ["push", "ping", "pull_request", "issues", "workflow_run", "check_suite", "installation", "create", "delete", "release"])
      expect(githubEvents).toContain(event);
    const files = gitlabFiles();
    for (const kind of [
      "push", "tag_push", "issue", "work_item", "note_commit", "note_merge_request", "note_issue", "note_snippet", "merge_request",
      "wiki_page", "pipeline", "job", "deployment", "feature_flag", "release", "emoji", "resource_access_token_project",
      "resource_access_token_group", "member_add", "member_update", "member_remove", "project_create", "project_destroy",
      "subgroup_create", "subgroup_destroy", "vulnerability", "milestone",
      "system/project_create", "system/user_create", "system/key_create", "system/group_create", "system/user_add_to_team",
      "system/repository_update", "system/push", "system/tag_push", "system/merge_request",
    ])
      expect(files).toContain(kind);
    // Every recorded file gets the header GitLab sends with it.
    for (const file of files) expect(gitlabEventHeader(file)).toMatch(/ Hook$/);
    expect(gitlabCases).toHaveLength(files.length);
  });

  it.each(eventKindCases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    expectOutcome(c, () => parse(c));
  });
});

describe("GitLab hooks named by event_name", () => {
  it("acknowledges member, project and subgroup hooks (no object_kind) as ignored, naming the event", () => {
    const c = gitlabCases.find((k) => k.name === "gitlab member_add") as EventKindCase;
    expect(parse(c)).toEqual({ kind: "ignored", delivery: c.headers["idempotency-key"], reason: "event Member Hook is not handled" });
  });

  it("acknowledges system hooks, pushes included, as ignored: they name no project id and would run a push twice", () => {
    for (const file of ["system/push", "system/tag_push", "system/repository_update", "system/merge_request"]) {
      const c = gitlabCases.find((k) => k.name === `gitlab ${file}`) as EventKindCase;
      const event = parse(c);
      expect(event.kind).toBe("ignored");
      if (event.kind === "ignored") expect(event.reason).toMatch(/^system hook event \w+ is not handled: pushes come from project or group webhooks$/);
    }
  });
});

describe("decodeGitHubBody: GitHub's two content types", () => {
  const form = "application/x-www-form-urlencoded";

  it("decodes every example sent form-encoded to the same payload and the same event", () => {
    for (const c of githubCases) {
      const raw = encoder.encode(githubFormBody(c.body));
      expect(decodeGitHubBody(raw, form)).toEqual(c.body);
      expectOutcome(c, () => parse(c, raw, form));
    }
  });

  it("reads a form body as GitHub encodes it (spaces as +, reserved characters escaped), the signature over its raw bytes", async () => {
    const payload = { zen: "Keep it logically awesome.", hook_id: 1, note: "a+b=c & d%" };
    const raw = encoder.encode(githubFormBody(payload));
    expect(new TextDecoder().decode(raw)).toContain("payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22");
    // The caller verifies the raw bytes first, then decodes.
    const signature = await signGitHub(raw, "It's a Secret to Everybody");
    expect(await verifyGitHubSignature(raw, signature, ["It's a Secret to Everybody"])).toBe(true);
    expect(decodeGitHubBody(raw, "Application/X-WWW-Form-Urlencoded; charset=utf-8")).toEqual(payload);
  });

  it("reads JSON with or without a content type", () => {
    const raw = encoder.encode('{"zen":"Design for failure."}');
    expect(decodeGitHubBody(raw, "application/json")).toEqual({ zen: "Design for failure." });
    expect(decodeGitHubBody(raw, undefined)).toEqual({ zen: "Design for failure." });
  });

  it.each([
    ["a form body without payload", "hook=1", form, "payload"],
    ["a form payload that is not JSON", "payload=%7Bnope", form, "payload"],
    ["a JSON body that is not JSON", "{nope", "application/json", "body"],
  ])("%s is a BadPayloadError naming the field", (_label, text, contentType, field) => {
    let caught: unknown;
    try {
      decodeGitHubBody(encoder.encode(text), contentType);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BadPayloadError);
    expect((caught as BadPayloadError).status).toBe(400);
    expect((caught as BadPayloadError).issues[0]).toMatch(new RegExp(`^${field}: `));
  });
});
