import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { Miniflare } from "miniflare";
import { parse } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsApis } from "../../lib/aws/apis.ts";
import { bundleEdge } from "../../lib/bundles/bundle.ts";
import { WEBHOOK_BUDGET_BYTES } from "../../lib/bundles/functions.ts";
import { loadConfig } from "../../lib/config.ts";
import { createCoreServices, type CoreServices } from "../../lib/core-services.ts";
import { githubPush } from "../../lib/demo/payloads.ts";
import { startServers, type StartedServers } from "../../lib/local/servers.mjs";
import { signGitHub } from "../../lib/scm/verify.ts";
import { blockActions, formBody, slackHeaders } from "../support/chat.ts";
import { uniqueSuffix } from "../support/docker.ts";
import { waitFor } from "../support/wait.ts";

/**
 * The webhook and Slack's clicks as a Cloudflare Worker (functions/edge.ts), built as `npm run bundle:edge` builds
 * it and run by workerd through Miniflare with wrangler.toml's settings, against real dynalite
 * and local-aws-sqs reached through the AWS SDK over the Worker's fetch.
 */

const ROOT = join(import.meta.dirname, "../..");
const SECRET = "edge-webhook-secret-0123456789";
const SLACK_SECRET = "edge-slack-signing-secret-0123";
const KEYS = { AWS_ACCESS_KEY_ID: "AKIDHOISTEDGE0000000", AWS_SECRET_ACCESS_KEY: "edge-secret-access-key-must-not-leak" };

interface Wrangler {
  main: string;
  compatibility_date: string;
  compatibility_flags?: string[];
  no_bundle?: boolean;
  build?: { command?: string };
  vars?: Record<string, string>;
}

let servers: StartedServers;
let wrangler: Wrangler;
let built: Awaited<ReturnType<typeof bundleEdge>>;
let core: CoreServices;
let mf: Miniflare;
/** What the Worker wrote to its console. */
const output: string[] = [];
let settings: Record<string, string>;

/** A Worker with wrangler.toml's settings, these bindings added, its console kept in `output`. */
async function worker(bindings: Record<string, string>): Promise<Miniflare> {
  const m = new Miniflare({
    modules: true,
    scriptPath: built.file,
    modulesRoot: dirname(built.file),
    compatibilityDate: wrangler.compatibility_date,
    compatibilityFlags: wrangler.compatibility_flags ?? [],
    bindings: { ...wrangler.vars, ...bindings },
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      for (const stream of [stdout, stderr]) stream.on("data", (c: Buffer) => output.push(c.toString("utf8")));
    },
  });
  await m.ready;
  return m;
}

beforeAll(async () => {
  wrangler = parse(await readFile(join(ROOT, "wrangler.toml"), "utf8")) as unknown as Wrangler;
  [servers, built] = await Promise.all([startServers({}), bundleEdge({ outFile: join(await mkdtemp(join(tmpdir(), "hoist-edge-")), "index.mjs") })]);
  const config = loadConfig({ HOIST_TABLE: `edge-${uniqueSuffix()}`, HOIST_QUEUE: `edge-${uniqueSuffix()}`, AWS_ENDPOINT_URL_DYNAMODB: servers.dynamodb, AWS_ENDPOINT_URL_SQS: servers.sqs, HOIST_LOG_LEVEL: "silent" });
  // The table and the queue the stack would have made.
  core = await createCoreServices(config, awsApis(config));
  settings = {
    GITHUB_WEBHOOK_SECRET: SECRET,
    SLACK_SIGNING_SECRET: SLACK_SECRET,
    ...KEYS,
    HOIST_TABLE: config.HOIST_TABLE,
    HOIST_QUEUE_URL: core.queue.url,
    AWS_ENDPOINT_URL_DYNAMODB: servers.dynamodb,
    AWS_ENDPOINT_URL_SQS: servers.sqs,
  };
  mf = await worker(settings);
}, 120_000);

afterAll(async () => {
  await mf?.dispose();
  await servers?.close();
});

const push = githubPush({ path: "/srv/git/shop", sha: "9049f1265b7d61be4a8904a9a27120d2064dab3b", ref: "refs/heads/main", fullName: "acme/shop" });

async function deliver(m: Miniflare, delivery: string, signature: string, body = push) {
  const res = await m.dispatchFetch("https://hoist-webhook.example.workers.dev/hooks/github", {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": delivery, "x-hub-signature-256": signature },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The wake-ups in the queue, taken off it. */
async function drain(): Promise<unknown[]> {
  const got = await core.queue.receive(10, 0);
  for (const m of got) await core.queue.ack(m.receipt);
  return got.map((m) => JSON.parse(m.body) as unknown);
}

describe("the webhook on Cloudflare Workers (workerd via Miniflare)", () => {
  it("is built as wrangler.toml says: Hoist's bundle, uploaded as it is, with no Node built-in on its path", async () => {
    expect(wrangler.main).toBe("dist/edge/index.mjs");
    expect(wrangler.no_bundle).toBe(true);
    expect(JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")).scripts[wrangler.build!.command!.replace(/^npm run /, "")]).toContain("--edge");
    expect(built.inputs.filter((i) => i.startsWith("node:"))).toEqual([]);
    expect(built.inputs).toContain("functions/edge.ts");
    expect(await readFile(built.file, "utf8")).not.toMatch(/from\s*["']node:/);
    expect(built.bytes).toBeLessThanOrEqual(WEBHOOK_BUDGET_BYTES);
  });

  it("accepts a signed GitHub push: records the delivery in the table and enqueues its wake-up through the AWS SDK", async () => {
    const answer = await deliver(mf, "edge-1", await signGitHub(push, SECRET));
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    expect(answer.body).toMatchObject({ delivery: { status: "pending" }, duplicate: false });
    const id = (answer.body.delivery as { id: string }).id;
    const stored = await core.deliveries.getDelivery(id);
    expect(stored?.delivery).toMatchObject({ id, delivery: "edge-1", status: "pending", push: { provider: "github", repo: { fullName: "acme/shop" }, sha: "9049f1265b7d61be4a8904a9a27120d2064dab3b" } });
    expect(await waitFor("the wake-up in the queue", async () => {
      const got = await drain();
      return got.length ? got : undefined;
    })).toEqual([{ deliveryId: id }]);
  });

  it("refuses a bad signature, writing and enqueuing nothing", async () => {
    const before = (await core.deliveries.dueDeliveries(Number.MAX_SAFE_INTEGER, 1000)).length;
    const answer = await deliver(mf, "edge-forged", await signGitHub(push, "not-the-secret-0123456789"));
    expect(answer.status).toBe(401);
    expect((await core.deliveries.dueDeliveries(Number.MAX_SAFE_INTEGER, 1000)).length).toBe(before);
    expect(await core.queue.depth()).toBe(0);
  });

  it("deduplicates a redelivery against the table: one record, one wake-up", async () => {
    const signature = await signGitHub(push, SECRET);
    const first = await deliver(mf, "edge-dup", signature);
    expect(first.status).toBe(202);
    const again = await deliver(mf, "edge-dup", signature);
    expect(again.body).toMatchObject({ duplicate: true, delivery: { id: (first.body.delivery as { id: string }).id } });
    expect(again.status).toBeLessThan(300);
    const wakes = await waitFor("the first wake-up", async () => {
      const got = await drain();
      return got.length ? got : undefined;
    });
    expect(wakes).toEqual([{ deliveryId: (first.body.delivery as { id: string }).id }]);
    expect(await core.queue.depth()).toBe(0);
  });

  it("answers hostile requests with a clear refusal, writing and enqueuing nothing", async () => {
    const before = (await core.deliveries.dueDeliveries(Number.MAX_SAFE_INTEGER, 1000)).length;
    const huge = JSON.stringify({ ref: "refs/heads/main", padding: "x".repeat(30 * 1024 * 1024) });
    const tooBig = await deliver(mf, "edge-huge", await signGitHub(huge, SECRET), huge);
    expect(tooBig.status).toBe(413);
    const garbage = "{ not json";
    const broken = await deliver(mf, "edge-garbage", await signGitHub(garbage, SECRET), garbage);
    expect(broken.status).toBe(400);
    const unsigned = await mf.dispatchFetch("https://hoist-webhook.example.workers.dev/hooks/github", { method: "POST", body: push, headers: { "x-github-event": "push", "x-github-delivery": "edge-unsigned" } });
    expect(unsigned.status).toBe(401);
    await unsigned.arrayBuffer();
    const elsewhere = await mf.dispatchFetch("https://hoist-webhook.example.workers.dev/api/runs");
    expect(elsewhere.status).toBe(404);
    await elsewhere.arrayBuffer();
    expect((await core.deliveries.dueDeliveries(Number.MAX_SAFE_INTEGER, 1000)).length).toBe(before);
    expect(await core.queue.depth()).toBe(0);
  });

  it("takes a signed Slack click: claims its signature once in the table and queues it for a worker to settle; a replay and a forged click are refused", async () => {
    const body = formBody(blockActions({ responseUrl: "https://hooks.slack.com/actions/T0/1/edge" }));
    const headers = await slackHeaders(body, SLACK_SECRET, Math.floor(Date.now() / 1000));
    const click = () => mf.dispatchFetch("https://hoist-webhook.example.workers.dev/chat/slack", { method: "POST", body, headers });
    const first = await click();
    expect(first.status, await first.text()).toBe(200);
    expect(await waitFor("the click in the queue", async () => {
      const got = await drain();
      return got.length ? got : undefined;
    })).toEqual([{ slackClick: body }]);
    const replay = await click();
    expect(replay.status).toBe(409);
    await replay.arrayBuffer();
    const forged = await mf.dispatchFetch("https://hoist-webhook.example.workers.dev/chat/slack", { method: "POST", body, headers: await slackHeaders(body, "not-the-slack-secret-0123", Math.floor(Date.now() / 1000)) });
    expect(forged.status).toBe(401);
    await forged.arrayBuffer();
    expect(await core.queue.depth()).toBe(0);
  });

  it("keeps the webhook secret and the AWS secret key out of its log", () => {
    const log = output.join("");
    expect(log).not.toContain(SLACK_SECRET);
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain(KEYS.AWS_SECRET_ACCESS_KEY);
  });

  it("without a setting it needs, answers 503 and says in its log which one and how to set it", async () => {
    const { HOIST_QUEUE_URL: _, ...missing } = settings;
    const broken = await worker(missing);
    try {
      const answer = await deliver(broken, "edge-unset", await signGitHub(push, SECRET));
      expect(answer).toEqual({ status: 503, body: { error: "the webhook cannot start: its log says why" } });
      await waitFor("the reason in the log", async () => (output.join("").includes("HOIST_QUEUE_URL: is the stack's QueueUrl output: set it in wrangler.toml's [vars]") ? true : undefined));
      expect(await core.queue.depth()).toBe(0);
      expect(output.join("")).not.toContain(KEYS.AWS_SECRET_ACCESS_KEY);
    } finally {
      await broken.dispose();
    }
  });
});
