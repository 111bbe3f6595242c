import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signLink } from "../../lib/chat/links.ts";
import { signSlack } from "../../lib/chat/slack-signature.ts";
import { RUN_ID } from "../support/chat.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SIGNING_SECRET = "workers-slack-signing-secret";
const LINK_SECRET = "workers-link-secret-0123456789abcdef";

// The real modules, bundled for a neutral platform: a stray Node built-in fails the bundle or the worker.
const ENTRY = `
import { verifySlackSignature } from "./lib/chat/slack-signature.ts";
import { verifyLink } from "./lib/chat/links.ts";
export default {
  async fetch(request, env) {
    const body = new Uint8Array(await request.arrayBuffer());
    const now = Number(request.headers.get("x-now"));
    const slack = await verifySlackSignature(body, { timestamp: request.headers.get("x-slack-request-timestamp"), signature: request.headers.get("x-slack-signature") }, [env.SIGNING_SECRET], now);
    const link = await verifyLink(request.headers.get("x-link") ?? "", env.LINK_SECRET, now);
    return Response.json({ slack: slack.ok, link: link.ok ? link.claims : link.reason });
  },
};
`;

let mf: Miniflare;
let bundle: string;

beforeAll(async () => {
  const out = await build({ stdin: { contents: ENTRY, resolveDir: ROOT, sourcefile: "worker.ts", loader: "ts" }, bundle: true, format: "esm", platform: "neutral", target: "es2022", write: false, logLevel: "silent" });
  bundle = out.outputFiles[0]?.text ?? "";
  mf = new Miniflare({ modules: true, script: bundle, compatibilityDate: "2025-09-01", bindings: { SIGNING_SECRET, LINK_SECRET } });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
});

async function ask(body: string, headers: Record<string, string>): Promise<{ slack: boolean; link: unknown }> {
  const res = await mf.dispatchFetch("http://hoist.test/chat", { method: "POST", body, headers });
  return (await res.json()) as { slack: boolean; link: unknown };
}

describe("Slack signatures and approval links on Cloudflare Workers (workerd via Miniflare)", () => {
  const body = "payload=%7B%22type%22%3A%22block_actions%22%7D";
  const now = Date.UTC(2030, 0, 1);
  const timestamp = String(now / 1000);

  it("bundles without Node built-ins", () => {
    expect(bundle).toContain("crypto.subtle");
    expect(bundle).not.toMatch(/from\s+["']node:/);
  });

  it("verifies what Node signed, and refuses what it must", async () => {
    const claims = { run: RUN_ID, stage: 2, decision: "reject" as const, approver: "alice", exp: now + 60_000, nonce: "workers-nonce-0123456789" };
    const headers = { "x-now": String(now), "x-slack-request-timestamp": timestamp, "x-slack-signature": await signSlack(body, timestamp, SIGNING_SECRET), "x-link": await signLink(claims, LINK_SECRET) };
    expect(await ask(body, headers)).toEqual({ slack: true, link: claims });
    expect(await ask(`${body}x`, { ...headers, "x-link": await signLink(claims, "another-secret-0123456789abcdefghij") })).toEqual({ slack: false, link: "forged" });
    expect(await ask(body, { ...headers, "x-now": String(now + 6 * 60_000) })).toEqual({ slack: false, link: "expired" });
  });
});
