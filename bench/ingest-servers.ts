// The two servers bench/ingest.ts measures, each run in its own process:
//   bare:  a hono handler that only verifies the signature (the floor);
//   hoist: the local runtime's HTTP (webhooks + API) over its embedded table and queue,
//          without the worker, so only ingestion is measured.
// Prints `READY <url>` once listening.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { startLocal } from "../lib/local/runtime.ts";
import { verifyGitHubSignature } from "../lib/scm/verify.ts";

const [kind, secret = "bench-ingest-secret"] = process.argv.slice(2);

if (kind === "bare") {
  const app = new Hono();
  app.post("/hooks/github", async (c) => {
    const raw = new Uint8Array(await c.req.arrayBuffer());
    const ok = await verifyGitHubSignature(raw, c.req.header("x-hub-signature-256"), [secret]);
    return ok ? c.json({ ok: true }, 202) : c.json({ error: "bad signature" }, 401);
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => console.log(`READY http://127.0.0.1:${info.port}`));
  process.once("SIGTERM", () => server.close(() => process.exit(0)));
} else if (kind === "hoist") {
  const runtime = await startLocal(
    {
      HOIST_PORT: "0",
      HOIST_DATA_DIR: await mkdtemp(join(tmpdir(), "hoist-bench-")),
      GITHUB_WEBHOOK_SECRET: secret,
      HOIST_ALLOW_LOCAL_REPOS: "1",
      HOIST_REGISTRY: "127.0.0.1:5000",
      HOIST_LOG_LEVEL: "error",
    },
    {},
    { workers: false },
  );
  console.log(`READY ${runtime.url}`);
  process.once("SIGTERM", () => void runtime.stop().then(() => process.exit(0)));
} else {
  console.error("usage: ingest-servers.ts bare|hoist [secret]");
  process.exit(2);
}
