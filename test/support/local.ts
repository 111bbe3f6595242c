import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLocal, type LocalRuntime } from "../../lib/local/runtime.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import { TERMINAL } from "../../lib/pipeline/statuses.ts";
import { signGitHub } from "../../lib/scm/verify.ts";
import type { ServiceOverrides } from "../../lib/services.ts";
import { requireDocker, requireRegistry } from "./docker.ts";
import { waitFor } from "./wait.ts";

export const SECRET = "e2e-webhook-secret";
export const GITLAB_TOKEN = "e2e-gitlab-token";
export const API_TOKEN = "e2e-api-token-0123456789";

/** The local runtime on a free port, over its embedded table and queue, the real engine and registry. */
export async function startRuntime(env: Record<string, string> = {}, overrides: ServiceOverrides = {}): Promise<LocalRuntime> {
  await requireDocker();
  await requireRegistry();
  return startLocal(
    {
      HOIST_PORT: "0",
      HOIST_DATA_DIR: await mkdtemp(join(tmpdir(), "hoist-e2e-")),
      GITHUB_WEBHOOK_SECRET: SECRET,
      GITLAB_WEBHOOK_TOKEN: GITLAB_TOKEN,
      HOIST_API_TOKEN: API_TOKEN,
      HOIST_ALLOW_LOCAL_REPOS: "1",
      HOIST_REGISTRY: "127.0.0.1:5000",
      HOIST_LOG_LEVEL: "warn",
      ...env,
    },
    overrides,
  );
}

export async function sendGitHubPush(url: string, body: string, delivery = `d-${Math.random().toString(36).slice(2)}`): Promise<string[]> {
  const res = await fetch(`${url}/hooks/github`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": delivery, "x-hub-signature-256": await signGitHub(body, SECRET) },
  });
  return runIds(res);
}

export async function sendGitLabPush(url: string, body: string, delivery = `gl-${Math.random().toString(36).slice(2)}`): Promise<string[]> {
  const res = await fetch(`${url}/hooks/gitlab`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-gitlab-event": "Push Hook", "x-gitlab-token": GITLAB_TOKEN, "idempotency-key": delivery },
  });
  return runIds(res);
}

/** The runs a push delivery made: the webhook answers with the delivery, a worker then makes its runs. */
export async function runIds(res: Response, token = API_TOKEN): Promise<string[]> {
  const url = new URL(res.url).origin;
  const body = (await res.json()) as { delivery?: { id: string } };
  if (res.status !== 202 || !body.delivery) throw new Error(`webhook answered ${res.status}: ${JSON.stringify(body)}`);
  const id = body.delivery.id;
  const done = await waitFor(`delivery ${id} to be resolved`, async () => {
    const d = await api<{ status: string; runs?: { id: string }[]; reason?: string }>(url, `/api/deliveries/${id}`, token);
    return d.status === "pending" ? undefined : d;
  }, 60_000, 50);
  if (!done.runs) throw new Error(`delivery ${id} made no run: ${done.status}: ${done.reason}`);
  return done.runs.map((r) => r.id);
}

export async function api<T>(url: string, path: string, token = API_TOKEN): Promise<T> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

/** Waits until the run is final (through the API, as a user would) and returns it. */
export function finalRun(url: string, id: string, timeoutMs = 120_000): Promise<Run> {
  return waitFor(`run ${id} to finish`, async () => {
    const run = await api<Run>(url, `/api/runs/${id}`);
    return TERMINAL.has(run.status) ? run : undefined;
  }, timeoutMs, 200);
}

export async function logsOf(url: string, id: string): Promise<string> {
  const res = await fetch(`${url}/api/runs/${id}/logs?format=text`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
  return res.text();
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Runs the `hoist` command line (scripts/hoist.mjs) against the runtime at `url`, `stdin` piped in; its output, stdout and stderr together. */
export function hoistCli(url: string, args: string[], stdin = ""): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "scripts", "hoist.mjs"), ...args], {
      cwd: ROOT,
      env: { ...process.env, HOIST_URL: url, HOIST_API_TOKEN: API_TOKEN, NO_COLOR: "1" },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d));
    child.stderr.on("data", (d: Buffer) => (out += d));
    child.on("close", (code) => resolve({ code, out }));
    child.stdin.end(stdin);
  });
}
