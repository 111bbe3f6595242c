import { describe, expect, it } from "vitest";
import type { ApprovalRequest, ChatNotifier, Notice } from "../../lib/chat/port.ts";
import { transition, type RunEvent } from "../../lib/pipeline/machine.ts";
import type { Run, StageSpec } from "../../lib/pipeline/run.ts";
import { approvalRequestOf, noticeBetween, peopleObserver } from "../../lib/runs/notices.ts";
import { defaultSpecs, makeRun } from "../support/runs.ts";

const deploy: StageSpec = { kind: "deploy", environment: "production", compose: "docker-compose.yml" };
const URL_ = "https://hoist.example.com/api/runs/r1";
const apply = (run: Run, events: RunEvent[]) => events.reduce((r, e) => transition(r, e).run, run);
const done = (i: number, ok = true, error?: string): RunEvent[] => [
  { type: "stageStarted", stage: i, at: 2000 + i * 10, job: `j${i}` },
  { type: "stageFinished", stage: i, at: 2005 + i * 10, ok, ...(error ? { error } : {}) },
];
const built = () => apply(makeRun([...defaultSpecs(), deploy], { trigger: { type: "push", delivery: "d1", actor: "carol" } }), [...done(0), ...done(1), ...done(2)]);
const rule = { approvers: ["alice"], count: 1, expiresAt: 9000, selfApproval: true, from: ["environment production"] };

describe("what people hear of a run", () => {
  it("a release, a rolled-back release, a timed-out approval, a failure: one notice per change, none for the rest", () => {
    const atGate = transition(built(), { type: "gateOpened", stage: 3, at: 3000 }).run;
    const released = apply(atGate, done(3));
    expect(noticeBetween(atGate, released, URL_)).toMatchObject({ kind: "released", environment: "production", stageName: "deploy-3", runId: "r1" });
    // The same change seen again (a re-read) says nothing new.
    expect(noticeBetween(released, released, URL_)).toBeUndefined();

    const rolledBack = apply(atGate, done(3, false, "web: health check failed; rolled back to release 01"));
    expect(noticeBetween(atGate, rolledBack, URL_)).toMatchObject({ kind: "rolled-back", error: expect.stringContaining("rolled back") });

    const waiting = transition(built(), { type: "gateOpened", stage: 3, at: 3000, rule }).run;
    const expired = transition(waiting, { type: "gateExpired", stage: 3, at: 9000 }).run;
    expect(noticeBetween(waiting, expired, URL_)).toMatchObject({ kind: "timed-out", error: "approval timed out with 0 of 1 approvals" });

    const testFailed = apply(makeRun(), [...done(0), ...done(1, false, "exit 1")]);
    expect(noticeBetween(apply(makeRun(), done(0)), testFailed, URL_)).toMatchObject({ kind: "failed", error: "test-1: exit 1" });
    expect(noticeBetween(undefined, makeRun(), URL_)).toBeUndefined();
  });

  it("an approval request names the gate's rule, the pusher and the environment", () => {
    const waiting = transition(built(), { type: "gateOpened", stage: 3, at: 3000, rule }).run;
    expect(approvalRequestOf(waiting, 3, URL_)).toEqual({
      runId: "r1",
      stage: 3,
      stageName: "deploy-3",
      pipeline: "main",
      repo: "acme/shop",
      provider: "github",
      branch: "main",
      sha: waiting.sha,
      pusher: "carol",
      environment: "production",
      approvers: ["alice"],
      count: 1,
      expiresAt: 9000,
      runUrl: URL_,
    });
    expect(approvalRequestOf(built(), 3, URL_)).toBeUndefined();
  });

  it("the observer reports every change and sends chat what it says, without waiting on either", () => {
    const asked: ApprovalRequest[] = [];
    const told: Notice[] = [];
    const reported: [Run | undefined, Run][] = [];
    // A chat that never answers: the observer must return all the same.
    const chat: ChatNotifier = { approvalRequested: (r) => (asked.push(r), new Promise(() => {})), notify: (n) => (told.push(n), new Promise(() => {})) };
    const observer = peopleObserver({ chat, reporter: { report: (b, a) => void reported.push([b, a]), flush: async () => {} }, runUrl: () => URL_ });
    const atGate = transition(built(), { type: "gateOpened", stage: 3, at: 3000, rule }).run;
    observer.approvalRequested?.(atGate, 3);
    const released = apply(atGate, [{ type: "decided", stage: 3, at: 4000, by: "alice", identities: [], via: "api", approve: true }, ...done(3)]);
    observer.changed?.(atGate, released);
    expect(asked.map((r) => r.runId)).toEqual(["r1"]);
    expect(told.map((n) => n.kind)).toEqual(["released"]);
    expect(reported).toEqual([[atGate, released]]);
  });
});
