import * as z from "zod";
import { classify, messageOf, NotFoundError, PermanentError, RetryableError, type ErrorContext, type HoistError, type RetryableOptions } from "../errors.ts";
import { parseChallenges } from "./challenge.ts";
import { DIGEST, isLoopbackHost, registryLocation, type RegistryLocation } from "./location.ts";
import type { RegistryLogin } from "./auth.ts";

/**
 * A client of the Docker Registry HTTP API v2 (https://distribution.github.io/distribution/spec/api/)
 * for what releasing by digest needs: the digest a reference names. Written on Node's fetch
 * because no npm client is kept up that does both the token handshake and a digest HEAD
 * within a deadline (dockside's last release is 0.0.2, of 2022; simple-docker-registry-client,
 * of 2021, speaks Basic only).
 *
 * Authentication as dockerd does it (https://distribution.github.io/distribution/spec/auth/token/):
 * ask; on 401, answer the challenge (Basic with the credentials, or Bearer with a token from
 * the realm it names) and ask once more.
 */

export interface RegistryCallOptions {
  /** How long the whole call may take, the token handshake included. Default 15 s. */
  timeoutMs?: number;
}

export const REGISTRY_TIMEOUT_MS = 15_000;
/** The most a token service's answer may be: tokens take a few KiB; more is no token. */
export const MAX_TOKEN_BYTES = 64 * 1024;

// Every manifest kind a reference may name. A registry digests the manifest it would serve to
// these Accept types; leave one out and it may convert (and digest) another than the one
// `docker push` reported and engines pull.
const MANIFEST_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** A token service's answer: `token`, or `access_token` as OAuth 2 names it. */
const TokenAnswer = z.object({ token: z.string().min(1).optional(), access_token: z.string().min(1).optional() });

/**
 * The digest `ref` (`host/repo:tag` or `host/repo@sha256:...`) names in its registry: the
 * tag's current one, or the reference's own once the registry confirms it has it.
 */
export async function manifestDigest(ref: string, auth: RegistryLogin | undefined, opts: RegistryCallOptions = {}): Promise<string> {
  const at = registryLocation(ref);
  const session = new Session(at, auth, opts.timeoutMs ?? REGISTRY_TIMEOUT_MS);
  const res = await session.request(`${at.origin}/v2/${at.repository}/manifests/${at.reference}`, { method: "HEAD", headers: { accept: MANIFEST_TYPES } });
  if (res.status !== 200) throw session.failure(res);
  if (at.digest !== undefined) return at.digest;
  const digest = res.headers.get("docker-content-digest");
  if (digest !== null && DIGEST.test(digest)) return digest;
  throw new PermanentError(`registry ${at.host} answered for ${at.display} without a Docker-Content-Digest: is it a Docker registry (API v2)?`, { context: session.context });
}

/** One call's requests to one registry: its deadline, its credentials, and its errors. */
class Session {
  readonly context: ErrorContext;
  private readonly signal: AbortSignal;

  constructor(
    private readonly at: RegistryLocation,
    private readonly auth: RegistryLogin | undefined,
    private readonly timeoutMs: number,
  ) {
    this.signal = AbortSignal.timeout(timeoutMs);
    this.context = { registry: at.host, image: at.display };
  }

  /** `url` asked, and asked once more with credentials if the registry challenges for them. */
  async request(url: string, init: { method: string; headers: Record<string, string> }): Promise<Response> {
    const first = await this.send(url, init);
    if (first.status !== 401) return first;
    const authorization = await this.answer(first.headers.get("www-authenticate") ?? "");
    if (authorization === undefined) return first;
    await discard(first);
    return this.send(url, { ...init, headers: { ...init.headers, authorization } });
  }

  /** The error a registry's answer other than 200 means. */
  failure(res: Response): HoistError {
    const { status } = res;
    const context = { ...this.context, status };
    if (status === 401 || status === 403) return this.refused();
    if (status === 404) return new NotFoundError(`${this.at.display} is not in the registry: was it pushed, or deleted since?`, { context });
    if (status === 408 || status === 429 || status >= 500) return this.outage(`(HTTP ${status})`, { context, ...retryAfter(res) });
    return new PermanentError(`registry ${this.at.host} refused to look up ${this.at.display}: HTTP ${status}`, { context });
  }

  /** The Authorization that answers a 401's challenge, or none when we have nothing to answer it with. */
  private async answer(header: string): Promise<string | undefined> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    // Without credentials too: token services hand anonymous tokens for public repositories.
    if (bearer !== undefined) return `Bearer ${await this.token(bearer.params)}`;
    if (this.auth !== undefined && challenges.some((c) => c.scheme === "basic")) return basic(this.auth);
    return undefined;
  }

  /** A token from the realm a Bearer challenge names, for its service and scope. */
  private async token(params: Record<string, string>): Promise<string> {
    const realm = this.realm(params.realm);
    if (params.service !== undefined) realm.searchParams.set("service", params.service);
    realm.searchParams.set("scope", params.scope ?? `repository:${this.at.repository}:pull`);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.auth !== undefined) headers.authorization = basic(this.auth);
    const res = await this.send(realm.href, { method: "GET", headers });
    const context = { ...this.context, status: res.status };
    if (res.status !== 200) {
      await discard(res);
      if (res.status === 401 || res.status === 403) throw this.refused();
      if (res.status === 408 || res.status === 429 || res.status >= 500) throw this.outage(`(its token service: HTTP ${res.status})`, { context, ...retryAfter(res) });
      throw new PermanentError(`the token service of registry ${this.at.host} (${realm.origin}) refused a token: HTTP ${res.status}`, { context });
    }
    let text: string | undefined;
    try {
      text = await readCapped(res, MAX_TOKEN_BYTES);
    } catch (err) {
      throw this.unreachable(err);
    }
    if (text === undefined) throw new PermanentError(`the token service of registry ${this.at.host} (${realm.origin}) answered with more than ${MAX_TOKEN_BYTES / 1024} KiB, which is no token`, { context });
    // Neither the answer nor the parse error goes into a message: either may carry the token.
    const answer = TokenAnswer.safeParse(parseJson(text));
    const token = answer.success ? (answer.data.token ?? answer.data.access_token) : undefined;
    if (token === undefined) throw new PermanentError(`the token service of registry ${this.at.host} (${realm.origin}) answered without a token`, { context });
    return token;
  }

  /** The realm as a URL we may send credentials to. */
  private realm(raw: string | undefined): URL {
    const url = raw !== undefined && URL.canParse(raw) ? new URL(raw) : undefined;
    if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
      throw new PermanentError(`registry ${this.at.host} asks for a token from ${raw === undefined ? "no realm" : "a realm that is not an http(s) URL"}: is it a Docker registry (API v2)?`, { context: this.context });
    }
    // Over plain HTTP, credentials can be read on the way by anyone but this machine.
    if (this.auth !== undefined && url.protocol === "http:" && !isLoopbackHost(url.host)) {
      throw new PermanentError(`registry ${this.at.host} asks for credentials over plain HTTP (${url.origin}): not sent; its token service must use https`, { context: this.context });
    }
    return url;
  }

  private async send(url: string, init: { method: string; headers: Record<string, string> }): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: this.signal });
    } catch (err) {
      throw this.unreachable(err);
    }
  }

  /** A request that got no answer: refused, reset, timed out, or a name or certificate that fails. */
  private unreachable(err: unknown): HoistError {
    const opts = { cause: err, context: this.context };
    if (this.signal.aborted) return this.outage(`within ${this.timeoutMs / 1000} s`, opts);
    const detail = codeOf(err) ?? messageOf(err);
    if (classify(err).retryable) return this.outage(`(${detail})`, opts);
    return new PermanentError(`cannot reach registry ${this.at.host}: ${detail}`, opts);
  }

  /** An outage: `why` completes "registry HOST does not answer ...". */
  private outage(why: string, opts: RetryableOptions): RetryableError {
    return new RetryableError(`registry ${this.at.host} does not answer ${why}: retry later`, opts);
  }

  private refused(): PermanentError {
    const fix = `\`hoist registry set ${this.at.host} --username USER --password-stdin\``;
    const message =
      this.auth === undefined
        ? `registry ${this.at.host} needs credentials to read ${this.at.display}: set them with ${fix}`
        : `registry ${this.at.host} refused the credentials of user ${JSON.stringify(this.auth.username)} for ${this.at.display}: check them with ${fix}`;
    return new PermanentError(message, { context: this.context });
  }
}

function basic(auth: RegistryLogin): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`, "utf8").toString("base64")}`;
}

/** A response body as text, or undefined once it proves longer than `maxBytes` (the rest is not read). */
async function readCapped(res: Response, maxBytes: number): Promise<string | undefined> {
  if (res.body === null) return "";
  if (Number(res.headers.get("content-length")) > maxBytes) {
    await discard(res);
    return undefined;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks).toString("utf8");
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
}

/** Lets go of a body we will not read, so its connection can be reused or closed. */
async function discard(res: Response): Promise<void> {
  // The answer is decided already; a failure to read what is left of it changes nothing.
  await res.body?.cancel().catch(() => undefined);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // not JSON: the caller says no token came, without quoting what did
  }
}

/** The socket error's code (ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED, ...): fetch puts it under `cause`. */
function codeOf(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
  return typeof cause?.code === "string" ? cause.code : undefined;
}

/** A 429's or 503's Retry-After (seconds) as the earliest worth trying again. */
function retryAfter(res: Response): { retryAfterMs?: number } {
  const raw = res.headers.get("retry-after");
  const seconds = raw === null ? NaN : Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? { retryAfterMs: seconds * 1000 } : {};
}
