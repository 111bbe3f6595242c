import { describe, expect, it } from "vitest";
import {
  ACTIONS_BLOCK,
  APPROVE_ACTION,
  approvalRequestMessage,
  decisionMessage,
  escapeMrkdwn,
  noteMessage,
  noticeMessage,
  OUTCOME_BLOCK,
  REJECT_ACTION,
  settledMessage,
  type SlackBlock,
} from "../../lib/chat/slack-messages.ts";
import { NOTICE_KINDS } from "../../lib/chat/port.ts";
import { parseButtonValue } from "../../lib/chat/slack-payload.ts";
import { approvalRequest, notice, RUN_ID } from "../support/chat.ts";

type Loose = Record<string, any>;
const json = (m: unknown) => JSON.stringify(m);
const blockOf = (blocks: SlackBlock[], type: string) => blocks.find((b) => b.type === type) as Loose | undefined;

describe("Slack approval messages", () => {
  it("asks with the run's facts, what is needed by when, a link, and the two buttons", () => {
    const m = approvalRequestMessage(approvalRequest());
    expect(m.blocks.map((b) => b.type)).toEqual(["header", "section", "section", "actions"]);
    const all = json(m.blocks);
    for (const fact of ["github:acme/shop", "branch main", "`0123456`", "main", "deploy (#3)", "production", "carol", "2 approvals from ops-lead, alice"]) expect(all).toContain(fact);
    expect(all).toContain("<!date^1893499200^");
    expect(all).toContain(`<https://hoist.example.com/runs/${RUN_ID}|View the run>`);
    const actions = blockOf(m.blocks, "actions")!;
    expect(actions.block_id).toBe(ACTIONS_BLOCK);
    const [approve, reject] = actions.elements as Loose[];
    expect(approve).toMatchObject({ type: "button", action_id: APPROVE_ACTION, style: "primary" });
    expect(reject).toMatchObject({ type: "button", action_id: REJECT_ACTION, style: "danger", confirm: { style: "danger" } });
    expect(reject!.confirm.title.text).toBe("Reject this release?");
    expect(parseButtonValue(approve!.value)).toEqual({ runId: RUN_ID, stage: 3, approve: true });
    expect(parseButtonValue(reject!.value)).toEqual({ runId: RUN_ID, stage: 3, approve: false });
    expect(m.text).toMatch(/^Approval needed: deploy \(production\) for acme\/shop branch main 0123456, pipeline main: 2 approvals from ops-lead, alice by 2030-01-01 12:00 UTC\. https:/);
  });

  it("says anyone may approve when the rule names nobody, and a tag when the run has one", () => {
    const m = approvalRequestMessage(approvalRequest({ approvers: [], count: 1, branch: undefined, tag: "v1.2.0" }));
    expect(json(m)).toContain("1 approval from anyone");
    expect(json(m)).toContain("tag v1.2.0");
  });

  it("escapes &, < and > in everything a pusher controls, so nothing pings or links", () => {
    const m = approvalRequestMessage(
      approvalRequest({ branch: "<!channel>&<https://evil.example|click>", pusher: "<@U999>", repo: "a&b/<c>", approvers: ["<!here>"], stageName: "x>y" }),
    );
    // Slack reads markup in mrkdwn texts and the fallback; plain_text (the header, the dialog) it shows as written.
    const mrkdwnTexts: string[] = [m.text];
    JSON.stringify(m.blocks, (_, v: Loose) => (v?.type === "mrkdwn" && mrkdwnTexts.push(v.text), v));
    expect(mrkdwnTexts.length).toBeGreaterThan(5);
    for (const text of mrkdwnTexts) expect(text).not.toMatch(/<!channel>|<!here>|<@U999>|<https:\/\/evil|x>y/);
    const all = json(m);
    expect(all).toContain("&lt;!channel&gt;&amp;&lt;https://evil.example|click&gt;");
    expect(all).toContain("&lt;@U999&gt;");
    expect(m.text).not.toMatch(/<!channel>/);
    expect(escapeMrkdwn("a & <b> & c")).toBe("a &amp; &lt;b&gt; &amp; c");
  });

  it("bounds what it repeats: a 10,000-character branch is clipped in the message", () => {
    const m = approvalRequestMessage(approvalRequest({ branch: "b".repeat(10_000) }));
    expect(json(m).length).toBeLessThan(8_000);
  });

  it("shows a decision: the same facts, a line on the outcome, buttons only while it still waits", () => {
    const at = Date.UTC(2030, 0, 1, 9, 30);
    const waiting = decisionMessage(approvalRequest(), { state: "waiting", summary: "approved by alice (1 of 2)", at });
    expect(blockOf(waiting.blocks, "actions")).toBeDefined();
    expect(blockOf(waiting.blocks, "context")).toMatchObject({ block_id: OUTCOME_BLOCK });
    expect(json(blockOf(waiting.blocks, "context"))).toContain("approved by alice (1 of 2)");
    const done = decisionMessage(approvalRequest(), { state: "rejected", summary: "rejected by bob: <b>not today</b>", at });
    expect(blockOf(done.blocks, "actions")).toBeUndefined();
    expect(json(done.blocks)).toContain("rejected by bob: &lt;b&gt;not today&lt;/b&gt;");
    expect(json(done.blocks)).toContain(":no_entry:");
    expect(done.text).toContain("rejected by bob");
  });

  it("settles the message a click came from, keeping Slack's blocks and replacing an earlier outcome", () => {
    const asked = approvalRequestMessage(approvalRequest());
    const once = settledMessage(asked, { state: "waiting", summary: "approved by alice (1 of 2)", at: 1 });
    expect(once.blocks.map((b) => b.type)).toEqual(["header", "section", "section", "actions", "context"]);
    const twice = settledMessage(once, { state: "approved", summary: "approved by alice, bob", at: 2 });
    expect(twice.blocks.map((b) => b.type)).toEqual(["header", "section", "section", "context"]);
    expect(json(twice.blocks)).not.toContain("1 of 2");
  });

  it("answers the clicker with a one-line note", () => {
    expect(noteMessage("not an approver <here>")).toEqual({ text: "not an approver &lt;here&gt;", blocks: [{ type: "section", text: { type: "mrkdwn", text: "not an approver &lt;here&gt;" } }] });
  });
});

describe("Slack notices", () => {
  it.each(NOTICE_KINDS)("%s has a title, the run's facts, a link and a fallback text", (kind) => {
    const m = noticeMessage(notice({ kind, environment: "production" }));
    expect(m.text.length).toBeGreaterThan(10);
    expect(m.text).toContain(`https://hoist.example.com/runs/${RUN_ID}`);
    expect(json(m.blocks)).toContain("acme/shop");
    expect(json(m.blocks)).toContain("View the run");
  });

  it("quotes an error in a code block that an error cannot close", () => {
    const m = noticeMessage(notice({ error: "boom ``` <!channel> &" }));
    const code = m.blocks.map((b) => json(b)).find((b) => b.includes("boom"))!;
    expect(code).toContain("boom ''' &lt;!channel&gt; &amp;");
  });
});
