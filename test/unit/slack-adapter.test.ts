import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fanOut } from "../../lib/chat/fan-out.ts";
import type { ChatNotifier } from "../../lib/chat/port.ts";
import { SlackNotifier } from "../../lib/chat/slack-notifier.ts";
import { noteMessage } from "../../lib/chat/slack-messages.ts";
import { SlackAdapter } from "../../lib/chat/slack.ts";
import { BadInputError, PermanentError, RetryableError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/log.ts";
import { approvalRequest, notice } from "../support/chat.ts";
import { SLACK_TEST_TOKEN, startSlackServer, type SlackServer } from "../support/slack-server.ts";

let slack: SlackServer;
let adapter: SlackAdapter;

beforeAll(async () => {
  slack = await startSlackServer();
  adapter = new SlackAdapter({ token: SLACK_TEST_TOKEN, apiUrl: slack.apiUrl, timeoutMs: 500 });
});
afterAll(async () => {
  await slack.close();
});
beforeEach(() => {
  slack.calls.length = 0;
});

describe("SlackAdapter", () => {
  it("posts an approval request to chat.postMessage with the bot token, and gets its ts", async () => {
    const posted = await adapter.postApprovalRequest("C0CA5", approvalRequest());
    expect(posted).toEqual({ channel: "C0CA5", ts: expect.stringMatching(/^\d+\.\d+$/) });
    const [call] = slack.callsTo("chat.postMessage");
    expect(call!.headers.authorization).toBe(`Bearer ${SLACK_TEST_TOKEN}`);
    expect(call!.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(call!.args).toMatchObject({ channel: "C0CA5", text: expect.stringContaining("Approval needed") });
    expect((call!.args.blocks as { type: string }[]).map((b) => b.type)).toEqual(["header", "section", "section", "actions"]);
  });

  it("posts notices and updates a message by channel and ts", async () => {
    await adapter.postNotice("C0CA5", notice());
    await adapter.updateMessage("C0CA5", "1700000000.000001", noteMessage("settled"));
    expect(slack.callsTo("chat.postMessage")).toHaveLength(1);
    expect(slack.callsTo("chat.update")[0]!.args).toMatchObject({ channel: "C0CA5", ts: "1700000000.000001", text: "settled" });
  });

  it("maps Slack's refusals to the error tree: channel_not_found is permanent, ratelimited and HTTP 500 retryable", async () => {
    slack.failNext("chat.postMessage", 1, { error: "channel_not_found" });
    await expect(adapter.postNotice("C404", notice())).rejects.toSatisfy((e) => e instanceof PermanentError && /chat\.postMessage: channel_not_found/.test(e.message));
    slack.failNext("chat.postMessage", 1, { error: "ratelimited" });
    await expect(adapter.postNotice("C0CA5", notice())).rejects.toBeInstanceOf(RetryableError);
    slack.failNext("chat.update", 1, { status: 500 });
    await expect(adapter.updateMessage("C0CA5", "1.2", noteMessage("x"))).rejects.toBeInstanceOf(RetryableError);
    // Retries are off: each failure was one request.
    expect(slack.calls).toHaveLength(3);
  });

  it("refuses a wrong token's answer as permanent", async () => {
    const other = new SlackAdapter({ token: "xoxb-wrong", apiUrl: slack.apiUrl, timeoutMs: 500 });
    await expect(other.postNotice("C0CA5", notice())).rejects.toSatisfy((e) => e instanceof PermanentError && /invalid_auth/.test(e.message) && !e.message.includes("xoxb-wrong"));
  });

  it("gives up at its timeout when Slack never answers", async () => {
    slack.failNext("chat.postMessage", 1, { hang: true });
    const started = Date.now();
    await expect(adapter.postNotice("C0CA5", notice())).rejects.toBeInstanceOf(RetryableError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("posts to a response_url on Slack's hooks or the configured API only", async () => {
    await adapter.postToResponseUrl(slack.responseUrl("one"), noteMessage("done"));
    await adapter.postToResponseUrl(slack.responseUrl("two"), noteMessage("only you"), { ephemeral: true });
    const [replace, ephemeral] = slack.callsTo("response");
    expect(replace!.headers["content-type"]).toMatch(/^application\/json/);
    expect(replace!.args).toMatchObject({ text: "done", replace_original: true });
    expect(ephemeral!.args).toMatchObject({ text: "only you", response_type: "ephemeral", replace_original: false });
    for (const url of ["https://evil.example/actions/1", "http://hooks.slack.com/actions/1", "https://hooks.slack.com.evil.example/x", "https://user:pw@hooks.slack.com/x", "file:///etc/passwd", "not a url"])
      await expect(adapter.postToResponseUrl(url, noteMessage("x")), url).rejects.toBeInstanceOf(BadInputError);
    expect(slack.callsTo("response")).toHaveLength(2);
  });

  it("a response_url that fails is an error of the tree", async () => {
    slack.failNext("response", 1, { status: 404 });
    await expect(adapter.postToResponseUrl(slack.responseUrl("gone"), noteMessage("x"))).rejects.toBeInstanceOf(PermanentError);
  });
});

describe("fanOut", () => {
  const lines: string[] = [];
  const log = createLogger("debug", [], { write: (line: string) => void lines.push(line) });
  beforeEach(() => {
    lines.length = 0;
  });

  it("reaches every channel, and a channel that fails or hangs neither throws nor holds up the others", async () => {
    const hangs: ChatNotifier = { approvalRequested: () => new Promise(() => undefined), notify: () => new Promise(() => undefined) };
    const fails: ChatNotifier = { approvalRequested: () => Promise.reject(new Error("robot down")), notify: () => Promise.reject(new Error("robot down")) };
    const all = fanOut(
      [
        { channel: "slack", notifier: new SlackNotifier(adapter, "C0CA5") },
        { channel: "stuck", notifier: hangs },
        { channel: "broken", notifier: fails },
      ],
      { log, timeoutMs: 300 },
    );
    const started = Date.now();
    await expect(all.approvalRequested(approvalRequest())).resolves.toBeUndefined();
    await expect(all.notify(notice({ kind: "released" }))).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(slack.callsTo("chat.postMessage")).toHaveLength(2);
    const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "chat message not delivered");
    expect(warnings.map((w) => [w.channel, w.what])).toEqual(
      expect.arrayContaining([
        ["stuck", "approval request"],
        ["broken", "approval request"],
        ["stuck", "released notice"],
        ["broken", "released notice"],
      ]),
    );
    expect(warnings.find((w) => w.channel === "stuck")!.err).toMatch(/longer than 300 ms/);
  });

  it("swallows a Slack outage too", async () => {
    slack.failNext("chat.postMessage", 1, { status: 503 });
    await expect(fanOut([{ channel: "slack", notifier: new SlackNotifier(adapter, "C0CA5") }], { log }).notify(notice())).resolves.toBeUndefined();
    expect(lines.join("\n")).toContain("chat message not delivered");
    expect(lines.join("\n")).not.toContain(SLACK_TEST_TOKEN);
  });
});
