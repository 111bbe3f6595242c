import { createHmac } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { verifyLink } from "../../lib/chat/links.ts";
import { robotBodies, WECOM_MAX_BYTES, type RobotKind } from "../../lib/chat/robot-formats.ts";
import { robotApprovalMessage, robotNoticeMessage, robotText } from "../../lib/chat/robot-messages.ts";
import { RobotNotifier } from "../../lib/chat/robot-notifier.ts";
import { dingTalkSign, dingTalkSignedUrl, feishuSign } from "../../lib/chat/robot-sign.ts";
import { sendRobot } from "../../lib/chat/robots.ts";
import { PermanentError, RetryableError } from "../../lib/errors.ts";
import { approvalRequest, notice, RUN_ID } from "../support/chat.ts";
import { startRobotServer, type RobotServer } from "../support/robot-server.ts";

type Loose = Record<string, any>;

// Vectors computed outside this code, with OpenSSL, following each vendor's documented recipe:
//   DingTalk: printf '%s\n%s' 1700000000126 "$S" | openssl dgst -sha256 -hmac "$S" -binary | base64
//   Feishu:   printf '' | openssl dgst -sha256 -hmac "$(printf '%s\n%s' 1700000000 "$S")" -binary | base64
// (and again with Python's hmac, as the vendors' own samples do, with the same results).
const DINGTALK_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";
const DINGTALK_TS = 1700000000126;
const DINGTALK_SIGN = "XMm8cSF7CizqdP5OZ5CTsz7r+6qAv4LkAnJ/EXIHzGc=";
const DINGTALK_SIGN_ENCODED = "XMm8cSF7CizqdP5OZ5CTsz7r%2B6qAv4LkAnJ%2FEXIHzGc%3D";
const FEISHU_SECRET = "feishu-secret-for-tests";
const FEISHU_TS = 1700000000;
const FEISHU_SIGN = "/s8AKdasgH2z6r2QauqTrhTPvriCCrwdZOiWhGsByRM=";

describe("robot signatures", () => {
  it("DingTalk: HMAC keyed by the secret over `timestamp\\nsecret`, base64, URL-encoded on the URL", async () => {
    expect(await dingTalkSign(DINGTALK_SECRET, DINGTALK_TS)).toBe(DINGTALK_SIGN);
    const url = await dingTalkSignedUrl("https://oapi.dingtalk.com/robot/send?access_token=abc123", DINGTALK_SECRET, DINGTALK_TS);
    expect(url).toBe(`https://oapi.dingtalk.com/robot/send?access_token=abc123&timestamp=${DINGTALK_TS}&sign=${DINGTALK_SIGN_ENCODED}`);
  });

  it("Feishu: HMAC keyed by `timestamp\\nsecret` over nothing, base64", async () => {
    expect(await feishuSign(FEISHU_SECRET, FEISHU_TS)).toBe(FEISHU_SIGN);
    // The mix-up the two recipes invite (DingTalk's keying) gives another value, which Feishu refuses with 19021.
    const dingTalkWay = createHmac("sha256", FEISHU_SECRET).update(`${FEISHU_TS}\n${FEISHU_SECRET}`).digest("base64");
    expect(dingTalkWay).not.toBe(FEISHU_SIGN);
  });
});

describe("robot messages", () => {
  const links = [
    { approver: "ops-lead", approve: "https://hoist.example.com/chat/approve/a1", reject: "https://hoist.example.com/chat/approve/r1" },
    { approver: "alice", approve: "https://hoist.example.com/chat/approve/a2", reject: "https://hoist.example.com/chat/approve/r2" },
  ];

  it("an approval has the run's facts, what is needed, and an approve and a reject link per approver", () => {
    const m = robotApprovalMessage(approvalRequest(), links);
    expect(m.title).toBe("Approval needed: deploy (production)");
    const text = m.lines.join("\n");
    for (const fact of ["github:acme/shop", "branch main", "0123456", "main", "production", "carol", "deploy (#3)", "2 approvals from ops-lead, alice", "2030-01-01 12:00 UTC"]) expect(text).toContain(fact);
    expect(m.buttons.map((b) => [b.label, b.url])).toEqual([
      ["Approve as ops-lead", links[0]!.approve],
      ["Reject as ops-lead", links[0]!.reject],
      ["Approve as alice", links[1]!.approve],
      ["Reject as alice", links[1]!.reject],
    ]);
    const anyone = robotApprovalMessage(approvalRequest({ approvers: [] }), [{ approver: "robot", approve: "https://h/a", reject: "https://h/r" }]);
    expect(anyone.buttons.map((b) => b.label)).toEqual(["Approve", "Reject"]);
  });

  it("neutralises markup from outside: no links, tags or extra lines", () => {
    expect(robotText("[click](https://evil) <at user_id=\"all\"></at>\n# heading")).toBe('［click］(https://evil) ＜at user_id="all"＞＜/at＞ # heading');
    const m = robotApprovalMessage(approvalRequest({ branch: "[x](https://evil)", pusher: "<font color=red>me</font>" }), links);
    const text = m.lines.join("\n");
    expect(text).not.toMatch(/\[x\]|<font/);
  });

  it("DingTalk: an actionCard with one btns entry per link, markdown for a notice without links", () => {
    const [body] = robotBodies("dingtalk", robotApprovalMessage(approvalRequest(), links)) as Loose[];
    expect(body).toMatchObject({ msgtype: "actionCard", actionCard: { title: "Approval needed: deploy (production)", btnOrientation: "0" } });
    expect(body!.actionCard.text).toMatch(/^### Approval needed/);
    expect(body!.actionCard.btns).toEqual([
      { title: "Approve as ops-lead", actionURL: links[0]!.approve },
      { title: "Reject as ops-lead", actionURL: links[0]!.reject },
      { title: "Approve as alice", actionURL: links[1]!.approve },
      { title: "Reject as alice", actionURL: links[1]!.reject },
    ]);
    const [plain] = robotBodies("dingtalk", { title: "t", lines: ["a"], buttons: [] }) as Loose[];
    expect(plain).toEqual({ msgtype: "markdown", markdown: { title: "t", text: "### t\n\na" } });
  });

  it("Feishu: an interactive card whose buttons open the links", () => {
    const [body] = robotBodies("feishu", robotApprovalMessage(approvalRequest(), links)) as Loose[];
    expect(body!.msg_type).toBe("interactive");
    expect(body!.card.header.title).toEqual({ tag: "plain_text", content: "Approval needed: deploy (production)" });
    const [div, action] = body!.card.elements as Loose[];
    expect(div).toMatchObject({ tag: "div", text: { tag: "lark_md" } });
    expect(action!.actions.map((b: Loose) => [b.tag, b.type, b.text.content, b.url])).toEqual([
      ["button", "primary", "Approve as ops-lead", links[0]!.approve],
      ["button", "danger", "Reject as ops-lead", links[0]!.reject],
      ["button", "primary", "Approve as alice", links[1]!.approve],
      ["button", "danger", "Reject as alice", links[1]!.reject],
    ]);
  });

  it("WeCom: markdown with the links inline, split so no message passes 4096 bytes", () => {
    const [one] = robotBodies("wecom", robotApprovalMessage(approvalRequest(), links)) as Loose[];
    expect(one!.msgtype).toBe("markdown");
    expect(one!.markdown.content).toContain(`[Approve as alice](${links[1]!.approve})`);
    const many = Array.from({ length: 32 }, (_, i) => ({ approver: `approver-${i}`, approve: `https://hoist.example.com/chat/approve/${"a".repeat(250)}${i}`, reject: `https://hoist.example.com/chat/approve/${"r".repeat(250)}${i}` }));
    const bodies = robotBodies("wecom", robotApprovalMessage(approvalRequest({ approvers: many.map((l) => l.approver), count: 2 }), many)) as Loose[];
    expect(bodies.length).toBeGreaterThan(1);
    for (const b of bodies) expect(new TextEncoder().encode(b.markdown.content).length).toBeLessThanOrEqual(WECOM_MAX_BYTES);
    const all = bodies.map((b) => b.markdown.content).join("\n");
    for (const l of many) {
      expect(all).toContain(l.approve);
      expect(all).toContain(l.reject);
    }
  });

  it("a notice links to the run, and carries the error", () => {
    const m = robotNoticeMessage(notice({ kind: "failed", error: "npm test exited with 1" }));
    expect(m.title).toBe("Run failed at test");
    expect(m.lines.join("\n")).toContain("npm test exited with 1");
    expect(m.buttons).toEqual([{ label: "View the run", url: `https://hoist.example.com/runs/${RUN_ID}`, kind: "view" }]);
  });
});

describe("sendRobot", () => {
  let robots: RobotServer;
  beforeAll(async () => {
    robots = await startRobotServer();
  });
  afterAll(async () => {
    await robots.close();
  });
  beforeEach(() => {
    robots.posts.length = 0;
  });

  const message = robotNoticeMessage(notice());
  const now = Date.UTC(2030, 0, 1);

  it("DingTalk: signs on the URL, keeping the access token", async () => {
    await sendRobot("dingtalk", robots.webhook("dingtalk"), DINGTALK_SECRET, message, { now });
    const [post] = robots.posts;
    expect(post!.query.access_token).toBe("dt-access-token");
    expect(post!.query.timestamp).toBe(String(now));
    expect(post!.query.sign).toBe(createHmac("sha256", DINGTALK_SECRET).update(`${now}\n${DINGTALK_SECRET}`).digest("base64"));
    expect(post!.body.msgtype).toBe("actionCard");
  });

  it("Feishu: signs in the body, with the timestamp in seconds", async () => {
    await sendRobot("feishu", robots.webhook("feishu"), FEISHU_SECRET, message, { now });
    const [post] = robots.posts;
    const ts = String(now / 1000);
    expect(post!.body.timestamp).toBe(ts);
    expect(post!.body.sign).toBe(createHmac("sha256", `${ts}\n${FEISHU_SECRET}`).update("").digest("base64"));
    expect(post!.body.msg_type).toBe("interactive");
  });

  it("WeCom: posts the markdown to the keyed URL, unsigned", async () => {
    await sendRobot("wecom", robots.webhook("wecom"), undefined, message, { now });
    const [post] = robots.posts;
    expect(post!.query).toEqual({ key: "wc-key" });
    expect(post!.body).toMatchObject({ msgtype: "markdown" });
  });

  it.each<[RobotKind, number, typeof PermanentError | typeof RetryableError]>([
    ["dingtalk", 310000, PermanentError],
    ["dingtalk", 130101, RetryableError],
    ["feishu", 19021, PermanentError],
    ["feishu", 11232, RetryableError],
    ["wecom", 93000, PermanentError],
    ["wecom", 45009, RetryableError],
  ])("%s answering code %i is a %O", async (kind, code, type) => {
    robots.failNext(1, { code });
    const err = await sendRobot(kind, robots.webhook(kind), "s3cret", message, { now }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toContain(`${kind} robot refused the message: ${code}`);
  });

  it("an HTTP 500 is retryable, a 404 is not, and neither names the webhook's credential", async () => {
    robots.failNext(1, { status: 500 });
    const down = await sendRobot("wecom", robots.webhook("wecom"), undefined, message, { now }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(RetryableError);
    robots.failNext(1, { status: 404 });
    const gone = await sendRobot("wecom", robots.webhook("wecom"), undefined, message, { now }).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(PermanentError);
    for (const e of [down, gone]) expect((e as Error).message).not.toContain("wc-key");
  });

  it("gives up at its deadline when the robot never answers, as a retryable error", async () => {
    robots.failNext(1, { hang: true });
    const started = Date.now();
    const err = await sendRobot("dingtalk", robots.webhook("dingtalk"), DINGTALK_SECRET, message, { now, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((err as Error).message).not.toContain("dt-access-token");
  });

  it("a server that is not a robot is refused, not taken for success", async () => {
    const err = await sendRobot("wecom", robots.webhook("wecom").replace("/cgi-bin/webhook/send", "/elsewhere"), undefined, message, { now }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
  });
});

describe("RobotNotifier", () => {
  let robots: RobotServer;
  beforeAll(async () => {
    robots = await startRobotServer();
  });
  afterAll(async () => {
    await robots.close();
  });

  const LINK_SECRET = "link-secret-for-tests-0123456789abcdef";
  const now = Date.UTC(2030, 0, 1);

  it("sends one signed approve and reject link per approver, valid until the gate expires", async () => {
    const notifier = new RobotNotifier({ kind: "feishu", url: robots.webhook("feishu"), secret: FEISHU_SECRET, publicUrl: "https://hoist.example.com", linkSecret: LINK_SECRET, clock: { now: () => now } });
    await notifier.approvalRequested(approvalRequest());
    const buttons = (robots.posts.at(-1)!.body as Loose).card.elements[1].actions as Loose[];
    expect(buttons).toHaveLength(4);
    const claims = await Promise.all(buttons.map(async (b) => {
      expect(b.url).toMatch(/^https:\/\/hoist\.example\.com\/chat\/approve\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      const check = await verifyLink(b.url.split("/").at(-1), LINK_SECRET, now);
      if (!check.ok) throw new Error(check.message);
      return check.claims;
    }));
    expect(claims.map((c) => [c.approver, c.decision, c.run, c.stage, c.exp])).toEqual([
      ["ops-lead", "approve", RUN_ID, 3, approvalRequest().expiresAt],
      ["ops-lead", "reject", RUN_ID, 3, approvalRequest().expiresAt],
      ["alice", "approve", RUN_ID, 3, approvalRequest().expiresAt],
      ["alice", "reject", RUN_ID, 3, approvalRequest().expiresAt],
    ]);
    expect(new Set(claims.map((c) => c.nonce)).size).toBe(4);
  });

  it("binds the links to `robot` when the rule names nobody, and sends no links without a link secret", async () => {
    const opts = { kind: "dingtalk" as const, url: robots.webhook("dingtalk"), secret: DINGTALK_SECRET, publicUrl: "https://hoist.example.com", clock: { now: () => now } };
    await new RobotNotifier({ ...opts, linkSecret: LINK_SECRET }).approvalRequested(approvalRequest({ approvers: [], count: 1 }));
    const btns = (robots.posts.at(-1)!.body as Loose).actionCard.btns as Loose[];
    const approvers = await Promise.all(btns.map(async (b) => ((await verifyLink(b.actionURL.split("/").at(-1), LINK_SECRET, now)) as Loose).claims.approver));
    expect(approvers).toEqual(["robot", "robot"]);
    await new RobotNotifier(opts).approvalRequested(approvalRequest());
    const body = robots.posts.at(-1)!.body as Loose;
    expect(body.msgtype).toBe("markdown");
    expect(body.markdown.text).not.toContain("/chat/approve/");
  });
});
