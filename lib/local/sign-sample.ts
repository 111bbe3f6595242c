import * as z from "zod";
import { LinkClaims, newNonce, signLink } from "../chat/links.ts";
import { signSlack } from "../chat/slack-signature.ts";
import type { Config } from "../config.ts";
import { signGitHub } from "../scm/verify.ts";

/** The parts of an API Gateway HTTP API (payload 2.0) request that carry proof of who sent it. */
const HttpEvent = z
  .object({
    rawPath: z.string(),
    headers: z.record(z.string(), z.string()).default({}),
    body: z.string().optional(),
    isBase64Encoded: z.boolean().default(false),
  })
  .passthrough();

const APPROVE_PATH = /^\/chat\/approve\/([^/]+)$/;

/**
 * A sample request from events/, signed as its sender would sign it for this machine: GitHub
 * with the first webhook secret, GitLab with the first token, Slack with the signing secret
 * and a fresh timestamp, an approval link re-minted (fresh expiry and nonce) with the link
 * secret, an API call with the API token. What the config lacks stays as the sample has it,
 * and the function answers as it would to a stranger. Any other event is returned as it is.
 */
export async function signSample(event: unknown, config: Config, now = Date.now()): Promise<unknown> {
  const parsed = HttpEvent.safeParse(event);
  if (!parsed.success) return event;
  const http = parsed.data;
  const headers = { ...http.headers };
  const body = http.body === undefined ? "" : http.isBase64Encoded ? Buffer.from(http.body, "base64") : http.body;
  const [github] = config.GITHUB_WEBHOOK_SECRET;
  const [gitlab] = config.GITLAB_WEBHOOK_TOKEN;
  if ("x-hub-signature-256" in headers && github) headers["x-hub-signature-256"] = await signGitHub(body, github);
  if ("x-gitlab-token" in headers && gitlab) headers["x-gitlab-token"] = gitlab;
  if ("authorization" in headers && config.HOIST_API_TOKEN) headers.authorization = `Bearer ${config.HOIST_API_TOKEN}`;
  if ("x-slack-signature" in headers && config.SLACK_SIGNING_SECRET) {
    const timestamp = String(Math.floor(now / 1000));
    headers["x-slack-request-timestamp"] = timestamp;
    headers["x-slack-signature"] = await signSlack(typeof body === "string" ? body : new Uint8Array(body), timestamp, config.SLACK_SIGNING_SECRET);
  }
  let { rawPath } = http;
  const link = APPROVE_PATH.exec(rawPath)?.[1];
  if (link && config.HOIST_LINK_SECRET) {
    const claims = LinkClaims.omit({ exp: true, nonce: true }).strip().parse(JSON.parse(Buffer.from(link.split(".")[0] ?? "", "base64url").toString("utf8")));
    rawPath = `/chat/approve/${await signLink({ ...claims, exp: now + 3_600_000, nonce: newNonce() }, config.HOIST_LINK_SECRET)}`;
  }
  const context = (event as { requestContext?: { http?: object } }).requestContext;
  return { ...http, rawPath, headers, ...(context?.http ? { requestContext: { ...context, http: { ...context.http, path: rawPath } } } : {}) };
}
