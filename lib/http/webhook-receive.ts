import type { CoreServices } from "../core-services.ts";
import { BadInputError } from "../errors.ts";
import { acceptPush, type IngestDeps } from "../runs/ingest.ts";
import { decodeGitHubBody, parseGitHubDelivery } from "../scm/github-events.ts";
import { parseGitLabDelivery } from "../scm/gitlab-events.ts";
import type { SourceEvent } from "../scm/port.ts";
import { verifyGitHubSignature, verifyGitLabToken } from "../scm/verify.ts";
import type { Answer } from "./answers.ts";

export interface WebhookOptions {
  ingest: IngestDeps;
  githubSecrets: readonly string[];
  gitlabTokens: readonly string[];
  maxBodyBytes: number;
}

/** The webhooks' settings from the core services: they stand on nothing more. */
export function webhookOptions(s: Pick<CoreServices, "config" | "ingest">): WebhookOptions {
  return { ingest: s.ingest, githubSecrets: s.config.GITHUB_WEBHOOK_SECRET, gitlabTokens: s.config.GITLAB_WEBHOOK_TOKEN, maxBodyBytes: s.config.HOIST_MAX_BODY_BYTES };
}

/** What a webhook's answer depends on: its headers (by lower-case name) and its raw body. */
export interface WebhookRequest {
  header(name: string): string | undefined;
  body: Uint8Array;
}

export type WebhookProvider = "github" | "gitlab";

/**
 * A delivery to /hooks/github or /hooks/gitlab, whichever adapter carries it (hono's routes,
 * the webhook's Lambda handler). The order is the contract: size, then signature on the raw
 * bytes, then headers and JSON, then the event. Every rejection happens before anything is
 * written or enqueued; an accepted push answers 202 with its delivery. What fails past the
 * checks (the table, the queue) is thrown, for errorAnswer.
 */
export async function receiveWebhook(opts: WebhookOptions, provider: WebhookProvider, req: WebhookRequest): Promise<Answer> {
  if (req.body.byteLength > opts.maxBodyBytes) return tooLarge(opts.maxBodyBytes);
  return provider === "github" ? receiveGitHub(opts, req) : receiveGitLab(opts, req);
}

/** 413 for a body over `maxSize` (also what hono's routes answer to a streamed one). */
export function tooLarge(maxSize: number): Answer {
  return { status: 413, body: { error: `body larger than ${maxSize} bytes` } };
}

async function receiveGitHub(opts: WebhookOptions, req: WebhookRequest): Promise<Answer> {
  if (opts.githubSecrets.length === 0) return notConfigured("GitHub", "GITHUB_WEBHOOK_SECRET");
  if (!(await verifyGitHubSignature(req.body, req.header("x-hub-signature-256"), opts.githubSecrets)))
    return { status: 401, body: { error: "X-Hub-Signature-256 is missing or does not match any configured secret" } };
  const headers = { event: required(req.header("x-github-event"), "X-GitHub-Event"), delivery: required(req.header("x-github-delivery"), "X-GitHub-Delivery") };
  // GitHub sends form-encoded bodies (payload=...) unless the hook asks for JSON.
  const event = parseGitHubDelivery(headers, decodeGitHubBody(req.body, req.header("content-type")));
  if (event.kind === "ping") return { status: 200, body: { ok: true, pong: event.delivery } };
  return { status: 202, body: await accept(opts, event) };
}

async function receiveGitLab(opts: WebhookOptions, req: WebhookRequest): Promise<Answer> {
  if (opts.gitlabTokens.length === 0) return notConfigured("GitLab", "GITLAB_WEBHOOK_TOKEN");
  if (!(await verifyGitLabToken(req.header("x-gitlab-token"), opts.gitlabTokens)))
    return { status: 401, body: { error: "X-Gitlab-Token is missing or does not match any configured token" } };
  // GitLab retries with the same Idempotency-Key; older versions only send the event UUID.
  const delivery = req.header("idempotency-key") ?? req.header("x-gitlab-event-uuid") ?? req.header("x-gitlab-webhook-uuid");
  const headers = { event: required(req.header("x-gitlab-event"), "X-Gitlab-Event"), delivery: required(delivery, "Idempotency-Key or X-Gitlab-Event-UUID") };
  return { status: 202, body: await accept(opts, parseGitLabDelivery(headers, json(req.body))) };
}

async function accept(opts: WebhookOptions, event: SourceEvent): Promise<object> {
  if (event.kind === "ping") return { ok: true, pong: event.delivery };
  if (event.kind === "ignored") return { ignored: event.reason };
  return acceptPush(opts.ingest, event.delivery, event.push);
}

function json(raw: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(raw));
  } catch (err) {
    throw new BadInputError(`body is not valid JSON: ${(err as Error).message}`);
  }
}

function required(value: string | undefined, header: string): string {
  if (!value || value.length > 200) throw new BadInputError(`missing or invalid ${header} header`);
  return value;
}

function notConfigured(provider: string, variable: string): Answer {
  return { status: 503, body: { error: `${provider} webhooks are not configured: set ${variable} on the server` } };
}
