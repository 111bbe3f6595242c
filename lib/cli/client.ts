import * as z from "zod";
import { Run } from "../pipeline/run.ts";
import { RunStatus, StageStatus } from "../pipeline/statuses.ts";
import { Environment } from "../release/environment.ts";
import { Registry, type RegistryRegistration } from "../registry/registry.ts";
import { ReleaseRecord } from "../release/records.ts";
import { Variable, type VariableWrite } from "../release/variables.ts";
import { signGitHub } from "../scm/verify.ts";
import { Delivery, DeliveryStatus } from "../store/deliveries.ts";
import type { RunFilter } from "../store/port.ts";

/**
 * A small typed client for Hoist's HTTP API (and its GitHub webhook, for `hoist demo`).
 * Every answer is parsed with the server's own schemas; every failure becomes a
 * HoistApiError whose message says what to do next.
 */

export const RunPage = z.object({ runs: z.array(Run), cursor: z.string().optional() });
export type RunPage = z.infer<typeof RunPage>;

export const StageLog = z.object({ stage: z.number().int().min(0), name: z.string(), status: StageStatus, text: z.string() });
export type StageLog = z.infer<typeof StageLog>;

export const RunLogs = z.object({ runId: z.string(), stages: z.array(StageLog) });
export type RunLogs = z.infer<typeof RunLogs>;


/** What POST /hooks/github answers: the delivery recorded, an ignored event, or a ping's pong. */
export const WebhookAnswer = z.union([
  z.object({ delivery: z.object({ id: z.string(), status: DeliveryStatus }), duplicate: z.boolean() }),
  z.object({ ignored: z.string() }),
  z.object({ ok: z.literal(true), pong: z.string() }),
]);
export type WebhookAnswer = z.infer<typeof WebhookAnswer>;

const ErrorBody = z.object({ error: z.string() });
const Environments = z.object({ environments: z.array(Environment) });
const Releases = z.object({ releases: z.array(ReleaseRecord) });
const Registries = z.object({ registries: z.array(Registry) });
const Variables = z.object({ variables: z.array(Variable) });
export const RollbackAnswer = z.object({ release: ReleaseRecord });
export type RollbackAnswer = z.infer<typeof RollbackAnswer>;

/** A cancel's answer: the run cancelled (202), or as it already ended (409). */
export const CancelAnswer = z.union([Run, z.object({ error: z.string(), run: Run })]);
export type CancelAnswer = z.infer<typeof CancelAnswer>;


/** What an approval's answer says: whether it counted, and where the gate stands. */
export const DecisionAnswer = z.object({ outcome: z.enum(["accepted", "duplicate"]), stage: z.number(), waiting: z.boolean().optional(), summary: z.string() });
export type DecisionAnswer = z.infer<typeof DecisionAnswer>;

export interface ClientOptions {
  /** Base URL of a running Hoist, e.g. http://127.0.0.1:8080. */
  url: string;
  /** HOIST_API_TOKEN of that server. */
  token?: string | undefined;
  /** Per-request deadline. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class HoistApiError extends Error {
  override name = "HoistApiError";
  /** HTTP status when the server answered; undefined when it could not be reached. */
  readonly status: number | undefined;

  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

export class HoistClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: ClientOptions) {
    this.url = opts.url.replace(/\/+$/, "");
    this.token = opts.token || undefined;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  /** Runs, newest first, one page at a time. */
  async listRuns(filter: RunFilter = {}): Promise<RunPage> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== "") q.set(k, String(v));
    const qs = q.size ? `?${q}` : "";
    return this.api(`/api/runs${qs}`, RunPage);
  }

  /** A push delivery's progress: pending, then its runs (or why it made none). */
  async getDelivery(id: string): Promise<Delivery> {
    return this.api(`/api/deliveries/${encodeURIComponent(id)}`, Delivery, { notFound: `no delivery ${id}` });
  }

  async getRun(id: string): Promise<Run> {
    return this.api(`/api/runs/${encodeURIComponent(id)}`, Run, { notFound: `no run ${id}: list runs with \`hoist runs\`` });
  }

  /** Every stage's log (or only stage `stage`), with the stage's name and status. */
  async getLogs(id: string, stage?: number): Promise<RunLogs> {
    const qs = stage === undefined ? "" : `?stage=${stage}`;
    return this.api(`/api/runs/${encodeURIComponent(id)}/logs${qs}`, RunLogs, { notFound: `no run ${id}: list runs with \`hoist runs\`` });
  }

  /** Cancels a run: the stage in flight is undone (its job removed, its release withdrawn) and the rest skipped. */
  async cancel(id: string): Promise<{ cancelled: boolean; run: Run }> {
    const answer = await this.api(`/api/runs/${encodeURIComponent(id)}/cancel`, CancelAnswer, {
      method: "POST",
      notFound: `no run ${id}: list runs with \`hoist runs\``,
      accept: [409],
    });
    return "stages" in answer ? { cancelled: true, run: answer } : { cancelled: false, run: answer.run };
  }

  /** Approves (or rejects) the stage a run waits at, as `by`. */
  async approve(id: string, decision: { by: string; reject?: boolean; reason?: string }): Promise<DecisionAnswer> {
    return this.api(`/api/runs/${encodeURIComponent(id)}/approve`, DecisionAnswer, {
      method: "POST",
      body: { ...decision, via: "cli" },
      notFound: `no run ${id}: list runs with \`hoist runs\``,
    });
  }

  /** Runs a failed or cancelled run again from a stage (default: the one that failed), reusing its image. */
  async rerun(id: string, by: string, from?: number | string): Promise<Run> {
    return this.api(`/api/runs/${encodeURIComponent(id)}/rerun`, Run, {
      method: "POST",
      body: { by, ...(from !== undefined ? { from } : {}) },
      notFound: `no run ${id}: list runs with \`hoist runs\``,
    });
  }

  /** Starts a pipeline with `on: { manual: true }` at a branch, tag or commit of a repository Hoist has had pushes from. */
  async trigger(repo: string, pipeline: string, body: { by: string; ref: string; params: Record<string, string> }): Promise<Run> {
    return this.api(`/api/pipelines/${encodeURIComponent(repo)}/${encodeURIComponent(pipeline)}/runs`, Run, { method: "POST", body });
  }

  async listEnvironments(): Promise<Environment[]> {
    return (await this.api("/api/environments", Environments)).environments;
  }

  /** Registers or replaces an environment; the server validates it. */
  async putEnvironment(env: z.input<typeof Environment>): Promise<Environment> {
    return this.api(`/api/environments/${encodeURIComponent(env.name)}`, Environment, { method: "PUT", body: env });
  }

  async listReleases(env: string): Promise<ReleaseRecord[]> {
    return (await this.api(`/api/environments/${encodeURIComponent(env)}/releases`, Releases, { notFound: `no environment ${env}: list them with \`hoist env list\`` })).releases;
  }

  /** Queues the redeploy of an earlier release (`to`, else the one before the current): the answer is the queued release. */
  async rollback(env: string, to?: string): Promise<RollbackAnswer> {
    return this.api(`/api/environments/${encodeURIComponent(env)}/rollback`, RollbackAnswer, {
      method: "POST",
      body: to ? { to } : {},
      notFound: `no environment ${env}: list them with \`hoist env list\``,
    });
  }

  async listRegistries(): Promise<Registry[]> {
    return (await this.api("/api/registries", Registries)).registries;
  }

  /** Registers or replaces a registry's credentials; the answer never holds the password. */
  async putRegistry(host: string, registration: RegistryRegistration): Promise<Registry> {
    return this.api(`/api/registries/${encodeURIComponent(host)}`, Registry, { method: "PUT", body: registration });
  }

  async deleteRegistry(host: string): Promise<void> {
    await this.api(`/api/registries/${encodeURIComponent(host)}`, z.object({ deleted: z.string() }), { method: "DELETE", notFound: `no registry ${host}: list them with \`hoist registry list\`` });
  }

  /** An environment's variables; secret ones without their values. */
  async listVariables(env: string): Promise<Variable[]> {
    return (await this.api(`/api/environments/${encodeURIComponent(env)}/variables`, Variables, { notFound: noEnvironment(env) })).variables;
  }

  /** Sets or replaces a variable; the answer never holds a secret's value. */
  async putVariable(env: string, name: string, write: z.input<typeof VariableWrite>): Promise<Variable> {
    return this.api(variablePath(env, name), Variable, { method: "PUT", body: write, notFound: noEnvironment(env) });
  }

  async deleteVariable(env: string, name: string): Promise<void> {
    // Either the environment or the variable can be missing: the server's message says which.
    const notFound = (message: string) => (message.startsWith("no environment ") ? noEnvironment(env) : `no variable ${name} in ${env}: list them with \`hoist env vars list ${env}\``);
    await this.api(variablePath(env, name), z.object({ deleted: z.string() }), { method: "DELETE", notFound });
  }

  /** True when something answers /healthz with 200; never throws. */
  async healthy(): Promise<boolean> {
    try {
      const res = await this.fetchImpl(`${this.url}/healthz`, { signal: AbortSignal.timeout(Math.min(this.timeoutMs, 5_000)) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  /**
   * Delivers a GitHub webhook as GitHub would: signed with `secret` (X-Hub-Signature-256),
   * with the event name and a delivery id. Answers the status and the parsed body.
   */
  async sendGitHub(body: string, opts: { secret: string; delivery: string; event?: string }): Promise<{ status: number; answer: WebhookAnswer }> {
    const headers = {
      "content-type": "application/json",
      "user-agent": "hoist-cli",
      "x-github-event": opts.event ?? "push",
      "x-github-delivery": opts.delivery,
      "x-hub-signature-256": await signGitHub(body, opts.secret),
    };
    const res = await this.request("/hooks/github", { method: "POST", body, headers });
    const text = await res.text();
    if (res.status === 401)
      throw new HoistApiError(
        `the server refused the webhook signature (401): set GITHUB_WEBHOOK_SECRET to one of the server's webhook secrets`,
        401,
      );
    if (!res.ok) throw new HoistApiError(`POST /hooks/github answered ${res.status}: ${errorText(text)}`, res.status);
    return { status: res.status, answer: parseBody(WebhookAnswer, text, `${this.url}/hooks/github`) };
  }

  private async api<T extends z.core.$ZodType>(
    path: string,
    schema: T,
    opts: { notFound?: string | ((message: string) => string); method?: string; body?: unknown; accept?: number[] } = {},
  ): Promise<z.output<T>> {
    const headers: Record<string, string> = { accept: "application/json", "user-agent": "hoist-cli" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const res = await this.request(path, { headers, method: opts.method ?? "GET", ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
    const text = await res.text();
    // Some answers carry a result with a non-2xx status (a rollback that failed its health gate).
    if (res.ok || (opts.accept?.includes(res.status) && z.safeParse(schema, safeJson(text)).success)) return parseBody(schema, text, `${this.url}${path}`);
    const message = errorText(text);
    switch (res.status) {
      case 401:
        throw new HoistApiError(
          this.token
            ? `the server refused the API token (401): set HOIST_API_TOKEN to the server's token (or pass --token)`
            : `no API token (401): set HOIST_API_TOKEN to the server's token (or pass --token)`,
          401,
        );
      case 404:
        if (/ has no release /.test(message)) throw new HoistApiError(message, 404);
        // A 404 without our JSON error body means --url points at something else.
        if (opts.notFound && /^no (run|environment|registry|variable) /.test(message))
          throw new HoistApiError(typeof opts.notFound === "string" ? opts.notFound : opts.notFound(message), 404);
        throw new HoistApiError(`${this.url}${path} answered 404 (${message}): is --url (HOIST_URL) a Hoist server?`, 404);
      case 503:
        throw new HoistApiError(`the server answered 503: ${message}`, 503);
      default:
        throw new HoistApiError(`${path} answered ${res.status}: ${message}`, res.status);
    }
  }

  private async request(path: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(`${this.url}${path}`, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw unreachable(this.url, err);
    }
  }
}

const noEnvironment = (env: string) => `no environment ${env}: list them with \`hoist env list\``;
const variablePath = (env: string, name: string) => `/api/environments/${encodeURIComponent(env)}/variables/${encodeURIComponent(name)}`;

/** A fetch failure as an error that says what to check. */
export function unreachable(url: string, err: unknown): HoistApiError {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.name === "AbortError")
    return new HoistApiError(`Hoist at ${url} did not answer in time: is it overloaded, or is --url (HOIST_URL) right?`, undefined, { cause: err });
  const code = e?.cause?.code ?? (err as { code?: string })?.code;
  const why = code ?? e?.cause?.message ?? (err instanceof Error ? err.message : String(err));
  return new HoistApiError(
    `cannot reach Hoist at ${url} (${why}): is \`hoist start\` running at ${url}? (point elsewhere with --url or HOIST_URL)`,
    undefined,
    { cause: err },
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorText(text: string): string {
  try {
    const body = ErrorBody.safeParse(JSON.parse(text));
    if (body.success) return body.data.error;
  } catch {
    // not JSON: show the start of the text
  }
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 199)}…` : flat || "(empty body)";
}

function parseBody<T extends z.core.$ZodType>(schema: T, text: string, where: string): z.output<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HoistApiError(`${where} did not answer JSON: is --url (HOIST_URL) a Hoist server?`);
  }
  const r = z.safeParse(schema, json);
  if (r.success) return r.data;
  const issues = r.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join(".") || "body"}: ${i.message}`)
    .join("; ");
  throw new HoistApiError(`unexpected answer from ${where} (${issues}): is the CLI the same version as the server?`);
}
