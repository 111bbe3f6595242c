import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signGitHub } from "../../lib/scm/verify.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SECRET = "workers-secret";
const GITLAB_TOKEN = "workers-gitlab-token";

// The worker imports the real module; esbuild's neutral platform resolves no Node
// built-ins, so a stray node:crypto import fails the bundle or the worker.
const ENTRY = `
import { verifyGitHubSignature, verifyGitLabToken } from "./lib/scm/verify.ts";
export default {
  async fetch(request, env) {
    const body = new Uint8Array(await request.arrayBuffer());
    const github = await verifyGitHubSignature(body, request.headers.get("x-hub-signature-256"), [env.OLD_SECRET, env.SECRET]);
    const gitlab = await verifyGitLabToken(request.headers.get("x-gitlab-token"), [env.GITLAB_TOKEN]);
    return Response.json({ github, gitlab });
  },
};
`;

let mf: Miniflare;
let bundle: string;

beforeAll(async () => {
  const out = await build({
    stdin: { contents: ENTRY, resolveDir: ROOT, sourcefile: "worker.ts", loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  bundle = out.outputFiles[0]?.text ?? "";
  mf = new Miniflare({
    modules: true,
    script: bundle,
    compatibilityDate: "2025-09-01",
    bindings: { SECRET, OLD_SECRET: "retired-secret", GITLAB_TOKEN },
  });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
});

async function deliver(body: string, headers: Record<string, string>): Promise<{ github: boolean; gitlab: boolean }> {
  const res = await mf.dispatchFetch("http://hoist.test/webhooks", { method: "POST", body, headers });
  return (await res.json()) as { github: boolean; gitlab: boolean };
}

describe("verify.ts on Cloudflare Workers (workerd via Miniflare)", () => {
  const body = JSON.stringify({ ref: "refs/heads/main", zen: "Keep it logically awesome." });

  it("bundles without Node built-ins", () => {
    expect(bundle).toContain("crypto.subtle");
    expect(bundle).not.toMatch(/from\s+["']node:/);
  });

  it("accepts a good GitHub signature and a good GitLab token", async () => {
    const signature = await signGitHub(body, SECRET);
    expect(await deliver(body, { "x-hub-signature-256": signature, "x-gitlab-token": GITLAB_TOKEN })).toEqual({
      github: true,
      gitlab: true,
    });
  });

  it("rejects a bad signature, a tampered body and a wrong token", async () => {
    const signature = await signGitHub(body, "not-the-secret");
    expect(await deliver(body, { "x-hub-signature-256": signature, "x-gitlab-token": "nope" })).toEqual({
      github: false,
      gitlab: false,
    });
    const good = await signGitHub(body, SECRET);
    expect((await deliver(`${body} `, { "x-hub-signature-256": good })).github).toBe(false);
    expect((await deliver(body, { "x-hub-signature-256": "sha256=zz" })).github).toBe(false);
  });
});
