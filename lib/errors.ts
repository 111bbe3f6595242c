/**
 * Hoist's one error tree. Every adapter throws (or is classified into) one of these, and the
 * same classification decides both what a worker does (retry the work later, or fail the
 * stage with the message) and what an HTTP request answers (an outage is 503 with
 * Retry-After, bad input 400, a missing thing 404, a conflict 409).
 *
 * - `RetryableError`: trying again later can succeed (an engine, registry, router or provider
 *   that does not answer, a throttled table). `retryAfterMs` is the earliest worth trying.
 * - `PermanentError`: trying again cannot help; the message says what to change.
 *
 * Both carry `cause` and a small `context` (ids, names) for logs.
 */

export type ErrorContext = Readonly<Record<string, string | number | boolean | undefined>>;

export interface HoistErrorOptions {
  cause?: unknown;
  context?: ErrorContext;
}

export abstract class HoistError extends Error {
  abstract readonly retryable: boolean;
  /** The HTTP status this error answers when it reaches a request. */
  abstract readonly status: number;
  readonly context: ErrorContext;

  constructor(message: string, opts: HoistErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.context = opts.context ?? {};
  }
}

export interface RetryableOptions extends HoistErrorOptions {
  /** The earliest a new try is worth making; unset: the caller's usual backoff. */
  retryAfterMs?: number;
}

/** An outage or a wait: the same work can succeed later. */
export class RetryableError extends HoistError {
  override name = "RetryableError";
  readonly retryable = true;
  readonly status: number = 503;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, opts: RetryableOptions = {}) {
    super(message, opts);
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Something else holds what this needs (an environment's release lease); it frees by itself. */
export class BusyError extends RetryableError {
  override name = "BusyError";
  override readonly status = 409;
}

export interface PermanentOptions extends HoistErrorOptions {
  /** Default 422: understood, and cannot be done as asked. */
  status?: number;
}

/** Trying again cannot succeed: the message says what to change. */
export class PermanentError extends HoistError {
  override name = "PermanentError";
  readonly retryable = false;
  readonly status: number;

  constructor(message: string, opts: PermanentOptions = {}) {
    super(message, opts);
    this.status = opts.status ?? 422;
  }
}

/** Input from outside that is malformed or out of bounds. */
export class BadInputError extends PermanentError {
  override name = "BadInputError";
  constructor(message: string, opts: HoistErrorOptions = {}) {
    super(message, { ...opts, status: 400 });
  }
}

export class NotFoundError extends PermanentError {
  override name = "NotFoundError";
  constructor(message: string, opts: HoistErrorOptions = {}) {
    super(message, { ...opts, status: 404 });
  }
}

/** The request contradicts the current state (a run already final); asking again will not help. */
export class ConflictError extends PermanentError {
  override name = "ConflictError";
  constructor(message: string, opts: HoistErrorOptions = {}) {
    super(message, { ...opts, status: 409 });
  }
}

/** A fault of our own (a bug): not retried, answered 500 without its details. */
export class InternalError extends PermanentError {
  override name = "InternalError";
  constructor(message: string, opts: HoistErrorOptions = {}) {
    super(message, { ...opts, status: 500 });
  }
}

/** Socket-level failures: the peer is down, restarting, or the network dropped the call. */
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);

/** Deadlines that ran out: fetch's and AbortSignal's, gitbeaker's own (its retries too). */
const TIMEOUTS = new Set(["TimeoutError", "AbortError", "GitbeakerTimeoutError", "GitbeakerRetryError"]);

/** AWS error names that mean "slow down" or "try again" even where the SDK does not mark them. */
const AWS_TRANSIENT = new Set([
  "ThrottlingException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "InternalServerError",
  "InternalFailure",
  "ServiceUnavailable",
  "TransactionInProgressException",
]);

/**
 * The one classification of any thrown value. Hoist's own errors are returned as they are;
 * a foreign one (Node sockets, dockerode, the AWS SDK, octokit, gitbeaker, fetch aborts) is
 * wrapped with its message and kept as `cause`.
 */
export function classify(err: unknown): HoistError {
  if (err instanceof HoistError) return err;
  const e = (typeof err === "object" && err !== null ? err : {}) as ForeignError;
  const message = err instanceof Error ? err.message : String(err);
  const opts = { cause: err };
  if (e.name !== undefined && TIMEOUTS.has(e.name)) return new RetryableError(`timed out: ${message}`, opts);
  const code = codeOf(e);
  if (code !== undefined && TRANSIENT_CODES.has(code)) return new RetryableError(message, opts);
  // A unix socket that is not there yet: the daemon behind it is down or restarting.
  if (code === "ENOENT" && e.syscall === "connect") return new RetryableError(message, opts);
  // The AWS SDK marks its own: `$retryable` (throttling, transient), `$fault` (whose fault).
  if (e.$retryable !== undefined || e.$fault === "server" || (e.name !== undefined && AWS_TRANSIENT.has(e.name)))
    return new RetryableError(message, { ...opts, ...retryAfter(e) });
  if (e.$fault === "client") return new PermanentError(message, opts);
  const status = httpStatusOf(e);
  if (status !== undefined) return byStatus(status, message, opts, retryAfter(e));
  return new InternalError(message, opts);
}

/** An HTTP-like status from a peer (Docker, a registry, a provider) as the tree's error. */
export function byStatus(status: number, message: string, opts: HoistErrorOptions = {}, retry: RetryableOptions = {}): HoistError {
  if (status === 408 || status === 425 || status === 429 || status >= 500) return new RetryableError(message, { ...opts, ...retry });
  if (status === 404) return new NotFoundError(message, opts);
  if (status === 409) return new ConflictError(message, opts);
  if (status === 400 || status === 413 || status === 422) return new BadInputError(message, opts);
  return new PermanentError(message, opts);
}

export function isRetryable(err: unknown): boolean {
  return classify(err).retryable;
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface ForeignError {
  name?: string;
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  $retryable?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  statusCode?: unknown;
  status?: unknown;
  response?: { status?: unknown; headers?: unknown };
  cause?: unknown;
}

function codeOf(e: ForeignError): string | undefined {
  if (typeof e.code === "string") return e.code;
  // fetch (undici) puts the socket error under `cause`.
  const cause = e.cause as ForeignError | undefined;
  return typeof cause?.code === "string" ? cause.code : undefined;
}

function httpStatusOf(e: ForeignError): number | undefined {
  // dockerode: statusCode; octokit: status; gitbeaker: cause.response.status; AWS: $metadata.
  const cause = e.cause as ForeignError | undefined;
  for (const s of [e.statusCode, e.status, e.response?.status, cause?.response?.status, e.$metadata?.httpStatusCode])
    if (typeof s === "number" && s >= 100 && s < 600) return s;
  return undefined;
}

/** A peer's Retry-After (seconds), when its error carries the response headers. */
function retryAfter(e: ForeignError): RetryableOptions {
  const headers = (e.response?.headers ?? (e.cause as ForeignError | undefined)?.response?.headers) as Record<string, unknown> | { get?: (k: string) => unknown } | undefined;
  if (!headers) return {};
  const raw = typeof (headers as { get?: unknown }).get === "function" ? (headers as { get: (k: string) => unknown }).get("retry-after") : (headers as Record<string, unknown>)["retry-after"];
  const sec = Number(raw);
  return Number.isFinite(sec) && sec >= 0 ? { retryAfterMs: sec * 1000 } : {};
}
