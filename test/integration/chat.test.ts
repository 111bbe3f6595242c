import type { Hono } from "hono";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { signLink, type LinkClaims } from "../../lib/chat/links.ts";
import type { DecideResult, DecisionRequest } from "../../lib/pipeline/approval.ts";
import { SlackAdapter } from "../../lib/chat/slack.ts";
import { withErrors } from "../../lib/http/app.ts";
import { chatRoutes } from "../../lib/http/chat.ts";
import { settleClick } from "../../lib/chat/settle.ts";
import { MAX_SLACK_BODY_BYTES, parseSlackClick } from "../../lib/chat/slack-payload.ts";
import { startDynamo, type StartedServer } from "../../lib/local/servers.mjs";
import { createLogger } from "../../lib/log.ts";
import { loopbackDynamoApi } from "../../lib/store/dynamo-loopback.ts";
import { DynamoOnceStore } from "../../lib/store/dynamo-once.ts";
import { ensureTable } from "../../lib/store/dynamo-table.ts";
import { blockActions, formBody, RUN_ID, slackHeaders } from "../support/chat.ts";
import { uniqueSuffix } from "../support/docker.ts";
import { SLACK_TEST_TOKEN, startSlackServer, type SlackServer } from "../support/slack-server.ts";
import { waitFor } from "../support/wait.ts";
import { BadInputError } from "../../lib/errors.ts";

const SIGNING_SECRET = "slack-signing-secret-for-tests";
const LINK_SECRET = "link-secret-for-tests-0123456789abcdef";

let dynamo: StartedServer;
let once: DynamoOnceStore;
let slack: SlackServer;
let app: Hono;
const logLines: string[] = [];
const clock = { offset: 0, now: () => Date.now() + clock.offset };

/** What the fake `decide` was asked, and what it answers next; `hold` keeps it from answering until released. */
const decisions: DecisionRequest[] = [];
let nextResult: DecideResult;
let hold: Promise<void> | undefined;
/** Clicks the route handed on, settled here as a worker would: the test waits on them, never on a sleep. */
let deferred: Promise<void>[] = [];

beforeAll(async () => {
  try {
    dynamo = await startDynamo();
  } catch (err) {
    throw new Error(`this test runs dynalite in its own process and it did not start (is the dev dependency installed? run \`npm install\`): ${String(err)}`);
  }
  const api = loopbackDynamoApi(dynamo.url);
  const table = `t-chat-${uniqueSuffix()}`;
  await ensureTable(api, table);
  once = new DynamoOnceStore(api, table, clock);
  slack = await startSlackServer();
  const log = createLogger("debug", [SIGNING_SECRET, LINK_SECRET, SLACK_TEST_TOKEN], { write: (line: string) => void logLines.push(line) });
  const decide = async (req: DecisionRequest) => {
    decisions.push(req);
    await hold;
    return nextResult;
  };
  const settle = { slack: new SlackAdapter({ token: SLACK_TEST_TOKEN, apiUrl: slack.apiUrl, timeoutMs: 2_000, log }), decide, clock, log };
  app = withErrors(
    chatRoutes({
      signingSecret: SIGNING_SECRET,
      linkSecret: LINK_SECRET,
      once,
      settle: async (body) => void deferred.push(settleClick(settle, parseSlackClick(body))),
      decide,
      clock,
      log,
    }),
    log,
  );
});
afterAll(async () => {
  await slack?.close();
  await dynamo?.close();
});
beforeEach(() => {
  decisions.length = 0;
  slack.calls.length = 0;
  deferred = [];
  hold = undefined;
  clock.offset = 0;
  nextResult = { outcome: "accepted", stage: 3, waiting: false, summary: "approved by amy.mcgee (2 of 2)" };
});

let clicks = 0;
/** A click as Slack delivers it: a fresh response_url (so each body, and signature, is new), signed now. */
async function slackClick(over: Parameters<typeof blockActions>[0] = {}, signedAtMs = clock.now()) {
  const body = formBody(blockActions({ responseUrl: slack.responseUrl(`click-${++clicks}`), ...over }));
  return { body, headers: await slackHeaders(body, SIGNING_SECRET, Math.floor(signedAtMs / 1000)) };
}

const post = (path: string, init: { body?: string; headers?: Record<string, string> } = {}) => app.request(path, { method: "POST", ...init });
const settled = () => Promise.all(deferred);

describe("POST /chat/slack", () => {
  it("decides as the user's id and the email the workspace verified, which self-approval is matched on", async () => {
    slack.setEmail("U0AMY", "amy@example.com");
    expect((await post("/chat/slack", await slackClick({ userId: "U0AMY" }))).status).toBe(200);
    await settled();
    expect(decisions.at(-1)).toMatchObject({ by: "slack:U0AMY", identities: ["slack:U0AMY", "amy@example.com"] });
    expect(slack.callsTo("users.info").at(-1)?.args).toMatchObject({ user: "U0AMY" });
  });

  it("answers a valid click at once, then decides once and settles the message clicked", async () => {
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    const started = Date.now();
    const res = await post("/chat/slack", await slackClick());
    // The answer came while `decide` was still held: nothing waits for it.
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    expect(Date.now() - started).toBeLessThan(2_000);
    await waitFor("decide to be called", async () => decisions.length === 1);
    expect(slack.callsTo("chat.update")).toHaveLength(0);
    release();
    await settled();
    // Slack knows no email for U0CA5: only the id, never the name the user chose.
    expect(decisions).toEqual([{ runId: RUN_ID, stage: 3, approve: true, by: "slack:U0CA5", identities: ["slack:U0CA5"], via: "slack" }]);
    const [update] = slack.callsTo("chat.update");
    expect(update!.args).toMatchObject({ channel: "C0CA5", ts: "1548261231.000200" });
    const blocks = update!.args.blocks as { type: string; block_id?: string }[];
    // Slack's own blocks come back, the buttons gone and the outcome added.
    expect(blocks.map((b) => b.type)).toEqual(["header", "section", "section", "context"]);
    expect(JSON.stringify(blocks.at(-1))).toContain("approved by amy.mcgee (2 of 2)");
    expect(slack.callsTo("response")).toHaveLength(0);
  });

  it("keeps the buttons while the gate waits for more approvals", async () => {
    nextResult = { outcome: "accepted", stage: 3, waiting: true, summary: "approved by amy.mcgee (1 of 2)" };
    expect((await post("/chat/slack", await slackClick())).status).toBe(200);
    await settled();
    const blocks = slack.callsTo("chat.update")[0]!.args.blocks as { type: string }[];
    expect(blocks.map((b) => b.type)).toEqual(["header", "section", "section", "actions", "context"]);
  });

  it("tells only the clicker when the decision is refused, and leaves the message", async () => {
    nextResult = { outcome: "refused", stage: 3, reason: "slack:U0CA5 is not an approver here (approvers: ops-lead)" };
    expect((await post("/chat/slack", await slackClick({ approve: false }))).status).toBe(200);
    await settled();
    expect(decisions[0]).toMatchObject({ approve: false, via: "slack" });
    expect(slack.callsTo("chat.update")).toHaveLength(0);
    const [told] = slack.callsTo("response");
    expect(told!.args).toMatchObject({ response_type: "ephemeral", replace_original: false, text: expect.stringContaining("is not an approver here") });
  });

  it("settles through response_url when chat.update fails", async () => {
    slack.failNext("chat.update", 1, { error: "channel_not_found" });
    expect((await post("/chat/slack", await slackClick())).status).toBe(200);
    await settled();
    const [replaced] = slack.callsTo("response");
    expect(replaced!.args).toMatchObject({ replace_original: true });
    expect(JSON.stringify(replaced!.args.blocks)).toContain("approved by amy.mcgee (2 of 2)");
  });

  it("refuses a wrong signature, a stale or future timestamp, and a missing header: 401, nothing decided", async () => {
    const good = await slackClick();
    const cases: Record<string, string>[] = [
      { ...good.headers, "x-slack-signature": good.headers["x-slack-signature"]!.replace(/.$/, (c) => (c === "0" ? "1" : "0")) },
      (await slackClick({}, clock.now() - 6 * 60_000)).headers,
      (await slackClick({}, clock.now() + 6 * 60_000)).headers,
      { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": good.headers["x-slack-request-timestamp"]! },
    ];
    for (const headers of cases) {
      const res = await post("/chat/slack", { body: good.body, headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toMatch(/X-Slack-/);
    }
    // A body signed for another body does not pass either.
    const res = await post("/chat/slack", { body: good.body.replace("amy.mcgee", "mallory"), headers: good.headers });
    expect(res.status).toBe(401);
    await settled();
    expect(decisions).toEqual([]);
    expect(logLines.join("\n")).not.toContain(SIGNING_SECRET);
  });

  it("refuses a replay of a delivered request: 409, decided once", async () => {
    const click = await slackClick();
    expect((await post("/chat/slack", click)).status).toBe(200);
    const again = await post("/chat/slack", click);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: string }).error).toMatch(/replay/);
    await settled();
    expect(decisions).toHaveLength(1);
  });

  it("decides once for two identical deliveries at the same moment", async () => {
    const click = await slackClick();
    const statuses = (await Promise.all([post("/chat/slack", click), post("/chat/slack", click), post("/chat/slack", click)])).map((r) => r.status);
    expect(statuses.sort()).toEqual([200, 409, 409]);
    await settled();
    expect(decisions).toHaveLength(1);
  });

  it("answers 400 to a signed body that is not an approval click, 413 to an oversized one", async () => {
    const body = formBody({ ...blockActions(), actions: [{ action_id: "x", value: "drop table" }] });
    const res = await post("/chat/slack", { body, headers: await slackHeaders(body, SIGNING_SECRET, Math.floor(clock.now() / 1000)) });
    expect(res.status).toBe(400);
    const big = "x".repeat(MAX_SLACK_BODY_BYTES + 1);
    expect((await post("/chat/slack", { body: big, headers: await slackHeaders(big, SIGNING_SECRET, Math.floor(clock.now() / 1000)) })).status).toBe(413);
    await settled();
    expect(decisions).toEqual([]);
  });
});

describe("/chat/approve/:token", () => {
  let nonces = 0;
  const link = (over: Partial<LinkClaims> = {}, secret = LINK_SECRET) =>
    signLink({ run: RUN_ID, stage: 3, decision: "approve", approver: "alice", exp: clock.now() + 3_600_000, nonce: `nonce-${uniqueSuffix()}-${++nonces}-abcdef`, ...over }, secret);

  it("GET shows a confirm page with a POST form, and decides nothing", async () => {
    const token = await link();
    const res = await app.request(`/chat/approve/${token}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).toContain(`Approve run ${RUN_ID} stage 3 as alice?`);
    expect(html).toMatch(/<form method="post"><button type="submit">Approve<\/button><\/form>/);
    // Opening it twice (a link preview, then the person) still decides nothing and spends nothing.
    expect((await app.request(`/chat/approve/${token}`)).status).toBe(200);
    expect(decisions).toEqual([]);
    expect((await post(`/chat/approve/${token}`)).status).toBe(200);
  });

  it("escapes what the page repeats", async () => {
    const html = await (await app.request(`/chat/approve/${await link({ approver: '<script>alert("x")</script>' })}`)).text();
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
  });

  it("POST decides once, as the link's approver, and shows the outcome; the link then is used", async () => {
    nextResult = { outcome: "accepted", stage: 3, waiting: true, summary: "approved by alice (1 of 2)" };
    const token = await link();
    const res = await post(`/chat/approve/${token}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("approved by alice (1 of 2)");
    expect(decisions).toEqual([{ runId: RUN_ID, stage: 3, approve: true, by: "alice", identities: ["alice"], via: "robot" }]);
    const again = await post(`/chat/approve/${token}`);
    expect(again.status).toBe(409);
    expect(await again.text()).toContain("This link was used");
    expect(decisions).toHaveLength(1);
  });

  it("decides once when one link is posted several times at once", async () => {
    const token = await link({ decision: "reject" });
    const statuses = (await Promise.all(Array.from({ length: 5 }, () => post(`/chat/approve/${token}`)))).map((r) => r.status);
    expect(statuses.sort()).toEqual([200, 409, 409, 409, 409]);
    expect(decisions).toEqual([expect.objectContaining({ approve: false, by: "alice", via: "robot" })]);
  });

  it("shows a refusal with its reason", async () => {
    nextResult = { outcome: "refused", stage: 3, reason: "alice started this run, and this gate refuses self-approval" };
    const res = await post(`/chat/approve/${await link()}`);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("refuses self-approval");
  });

  it("refuses forged, other-run, other-secret, expired and malformed links, on GET and POST, deciding nothing", async () => {
    const token = await link();
    const [payload, mac] = token.split(".") as [string, string];
    const otherRun = (await link({ run: "r111111111111111111111111" })).split(".")[0]!;
    const refusals: [string, string, number][] = [
      ["a flipped MAC", `${payload}.${mac.slice(0, -1)}${mac.endsWith("A") ? "B" : "A"}`, 403],
      ["another run's claims under this MAC", `${otherRun}.${mac}`, 403],
      ["another secret's link", await link({}, "another-secret-of-another-server-0123"), 403],
      ["an expired link", await link({ exp: clock.now() - 1 }), 410],
      ["not a token", "hello", 403],
      ["an oversized token", `${"A".repeat(5000)}.${mac}`, 403],
    ];
    for (const [what, bad, status] of refusals) {
      expect((await app.request(`/chat/approve/${bad}`)).status, `GET ${what}`).toBe(status);
      const res = await post(`/chat/approve/${bad}`);
      expect(res.status, `POST ${what}`).toBe(status);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    }
    expect(decisions).toEqual([]);
    // The real link was never spent by the forgeries.
    expect((await post(`/chat/approve/${token}`)).status).toBe(200);
  });

  it("a link that expires between GET and POST is refused at POST", async () => {
    const token = await link({ exp: clock.now() + 60_000 });
    expect((await app.request(`/chat/approve/${token}`)).status).toBe(200);
    clock.offset = 61_000;
    expect((await post(`/chat/approve/${token}`)).status).toBe(410);
    expect(decisions).toEqual([]);
  });
});

describe("DynamoOnceStore on dynalite", () => {
  it("lets the first claim of a key win, also among racing claims, until its time is up", async () => {
    const key = `test:${uniqueSuffix()}`;
    const wins = await Promise.all(Array.from({ length: 10 }, () => once.claimOnce(key, 60_000)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await once.claimOnce(`${key}-other`, 60_000)).toBe(true);
    // DynamoDB's TTL removes items late: one past its time no longer counts.
    clock.offset = 62_000;
    expect(await once.claimOnce(key, 60_000)).toBe(true);
    expect(await once.claimOnce(key, 60_000)).toBe(false);
  });

  it("refuses an empty or oversized key before asking the table", async () => {
    await expect(once.claimOnce("", 1_000)).rejects.toBeInstanceOf(BadInputError);
    await expect(once.claimOnce("k".repeat(513), 1_000)).rejects.toBeInstanceOf(BadInputError);
  });
});

describe("chat routes without configuration", () => {
  it("answer 503 naming the variable to set, and decide nothing", async () => {
    const bare = withErrors(chatRoutes({ once, decide: async (r) => (decisions.push(r), nextResult), settle: async () => undefined, clock, log: createLogger("silent") }), createLogger("silent"));
    const click = await slackClick();
    const slackRes = await bare.request("/chat/slack", { method: "POST", ...click });
    expect(slackRes.status).toBe(503);
    expect(await slackRes.text()).toContain("SLACK_SIGNING_SECRET");
    const linkRes = await bare.request(`/chat/approve/${await signLink({ run: RUN_ID, stage: 0, decision: "approve", approver: "a", exp: clock.now() + 60_000, nonce: "n0nce-0123456789abcdef" }, LINK_SECRET)}`);
    expect(linkRes.status).toBe(503);
    expect(await linkRes.text()).toContain("HOIST_LINK_SECRET");
    expect(decisions).toEqual([]);
  });
});
