import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { githubPush } from "../../lib/demo/payloads.ts";
import { apiApp } from "../../lib/http/server.ts";
import { webhookApp } from "../../lib/http/webhook-app.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import { resolveDelivery } from "../../lib/runs/resolve-delivery.ts";
import { signGitHub } from "../../lib/scm/verify.ts";
import type { Services } from "../../lib/services.ts";
import type { Delivery } from "../../lib/store/deliveries.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";
import { waitFor } from "../support/wait.ts";

/**
 * The webhook answers at once whatever GitHub's API does: a stand-in API on a loopback port that
 * never answers, answers 500, or answers after 30 s, read through the real GitHubReader (octokit).
 */

const SECRET = "provider-faults-secret";
const TOKEN = "provider-faults-api-token";
const PIPELINE = "pipelines:\n  main:\n    on: { push: { branches: [main] } }\n    stages: [ { build: {} }, { push: {} } ]\n";

type Mode = "hang" | "500" | "slow";
let mode: Mode = "hang";
let slowMs = 30_000;
let stub: Server;
const sockets = new Set<Socket>();
let requests = 0;
let servers: StartedServers;
let s: Services;
let seq = 0;

function answer(req: IncomingMessage, res: ServerResponse): void {
  requests++;
  if (!req.url?.includes("/contents/.hoist.yml")) return void res.writeHead(404).end();
  if (mode === "hang") return; // never answers
  if (mode === "500") return void res.writeHead(500, { "content-type": "application/json" }).end('{"message":"Server Error"}');
  setTimeout(() => res.writeHead(200, { "content-type": "application/vnd.github.raw" }).end(PIPELINE), slowMs);
}

beforeAll(async () => {
  stub = createServer(answer);
  stub.on("connection", (sock) => (sockets.add(sock), sock.on("close", () => sockets.delete(sock))));
  await new Promise<void>((r) => stub.listen(0, "127.0.0.1", r));
  const api = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
  servers = await startAwsServers();
  // The server's own wiring: GITHUB_API_URL (GitHub Enterprise's form) points octokit at the stand-in.
  s = await servicesOn(servers, { GITHUB_WEBHOOK_SECRET: SECRET, HOIST_API_TOKEN: TOKEN, HOIST_REGISTRY: "127.0.0.1:5000", GITHUB_TOKEN: "gh-token-for-the-stand-in", GITHUB_API_URL: api });
});
afterAll(async () => {
  for (const sock of sockets) sock.destroy();
  await new Promise<void>((r) => stub.close(() => r()));
  await servers.close();
});

/** A signed push of acme/shop (a repository on GitHub, not a local one); its answer and how long it took. */
async function pushOnce(delivery = `gh-faults-${++seq}`): Promise<{ ms: number; status: number; body: { delivery: { id: string; status: string }; duplicate: boolean } }> {
  const body = githubPush({ path: "/nonexistent", sha: "c".repeat(40), ref: "refs/heads/main", fullName: "acme/shop" }).replace("file:///nonexistent", "https://github.com/acme/shop.git");
  const started = performance.now();
  const res = await webhookApp(s).request("/hooks/github", {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": delivery, "x-hub-signature-256": await signGitHub(body, SECRET) },
  });
  return { ms: performance.now() - started, status: res.status, body: (await res.json()) as never };
}

async function deliveryOf(id: string): Promise<Delivery> {
  const res = await apiApp(s).request(`/api/deliveries/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Delivery;
}

describe("a signed push is acknowledged at once whatever the provider does", () => {
  it("a provider that never answers: 202 in under 2 s, the delivery shows pending; the read fails when the connection drops, and is retried", async () => {
    mode = "hang";
    const before = requests;
    const sent = await pushOnce();
    expect(sent.status).toBe(202);
    expect(sent.ms).toBeLessThan(2000);
    expect(requests).toBe(before); // the webhook asked the provider nothing
    const resolving = resolveDelivery(s.resolve, sent.body.delivery.id);
    await waitFor("the worker's read to reach the provider", async () => requests > before, 10_000, 20);
    expect(await deliveryOf(sent.body.delivery.id)).toMatchObject({ status: "pending", attempts: 0 });
    for (const sock of sockets) sock.destroy();
    expect(await resolving).toBe("retrying");
    expect(await deliveryOf(sent.body.delivery.id)).toMatchObject({ status: "pending", attempts: 1, lastError: expect.stringContaining("could not read .hoist.yml of acme/shop") });
  });

  it("a provider that answers 500: 202 in under 2 s; the worker's read is retried later, the error shown on the delivery", async () => {
    mode = "500";
    const sent = await pushOnce();
    expect(sent.status).toBe(202);
    expect(sent.ms).toBeLessThan(2000);
    expect(await resolveDelivery(s.resolve, sent.body.delivery.id)).toBe("retrying");
    expect(await deliveryOf(sent.body.delivery.id)).toMatchObject({ status: "pending", attempts: 1, retryAt: expect.any(Number), lastError: expect.stringMatching(/500|Server Error/) });
  });

  it("a provider that answers after 30 s: 202 at once; the run is made later, once, whatever the redeliveries", async () => {
    mode = "slow";
    const sent = await pushOnce("gh-faults-slow");
    expect(sent.status).toBe(202);
    expect(sent.ms).toBeLessThan(2000);
    const started = Date.now();
    const [first, second] = [resolveDelivery(s.resolve, sent.body.delivery.id), resolveDelivery(s.resolve, sent.body.delivery.id)];
    const again = await pushOnce("gh-faults-slow");
    expect(again.ms).toBeLessThan(2000);
    expect(again.body).toMatchObject({ duplicate: true, delivery: { status: "pending" } });
    await Promise.all([first, second]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(slowMs - 100);
    const done = await deliveryOf(sent.body.delivery.id);
    expect(done).toMatchObject({ status: "resolved", runs: [{ pipeline: "main", status: "queued" }] });
    const runs = (await s.store.listRuns({ repo: "github:acme/shop" })).runs.filter((r) => r.trigger.type === "push" && r.trigger.delivery === "gh-faults-slow");
    expect(runs).toHaveLength(1);
  }, 90_000);
});
