import { BadInputError, byStatus, classify, HoistError, messageOf, PermanentError, RetryableError } from "../errors.ts";

/** A webhook body that is not the shape its event promises; the HTTP layer answers 400. */
export class BadPayloadError extends BadInputError {
  override readonly name = "BadPayloadError";
  readonly issues: readonly string[];

  constructor(what: string, issues: readonly string[]) {
    super(`${what}: ${issues.join("; ")}`);
    this.issues = issues;
  }
}

export type ProviderName = "GitHub" | "GitLab";

const TOKEN: Record<ProviderName, string> = { GitHub: "GITHUB_TOKEN", GitLab: "GITLAB_TOKEN" };

interface ProviderAnswer {
  status?: number;
  header(name: string): string | undefined;
}

/** Status and headers of an octokit RequestError (status, response.headers) or a gitbeaker one (cause.response). */
export function answerOf(err: unknown): ProviderAnswer {
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    status?: unknown;
    response?: { status?: unknown; headers?: unknown };
    cause?: { response?: { status?: unknown; headers?: unknown } };
  };
  const response = e.cause?.response ?? e.response;
  const rawStatus = typeof e.status === "number" ? e.status : response?.status;
  const headers = response?.headers;
  const header = (name: string): string | undefined => {
    if (headers instanceof Headers) return headers.get(name) ?? undefined;
    const value = (headers as Record<string, unknown> | undefined)?.[name];
    return value === undefined ? undefined : String(value);
  };
  return { ...(typeof rawStatus === "number" ? { status: rawStatus } : {}), header };
}

/**
 * When a rate limit lifts, if the answer says it is one: GitHub answers 403 or 429 with
 * `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds), or with
 * `retry-after` for its secondary limits; GitLab answers 429 with `retry-after`.
 */
function rateLimitWait(answer: ProviderAnswer, now: number): number | undefined {
  if (answer.status !== 403 && answer.status !== 429) return undefined;
  const retryAfter = Number(answer.header("retry-after"));
  if (answer.header("retry-after") !== undefined && Number.isFinite(retryAfter)) return Math.max(0, retryAfter * 1000);
  if (answer.header("x-ratelimit-remaining") === "0") {
    const reset = Number(answer.header("x-ratelimit-reset"));
    return Number.isFinite(reset) ? Math.max(0, reset * 1000 - now) : 60_000;
  }
  return answer.status === 429 ? 60_000 : undefined;
}

/**
 * A provider reader's failure as one of Hoist's errors: an outage, a timeout or a rate limit
 * is retryable (with the limit's wait), a refused token is permanent and names the
 * variable that holds it, and the rest goes by status as `byStatus` decides.
 */
export function providerError(provider: ProviderName, err: unknown, what: string): HoistError {
  if (err instanceof HoistError) return err;
  const message = `${provider} ${what}: ${messageOf(err)}`;
  const answer = answerOf(err);
  const wait = rateLimitWait(answer, Date.now());
  if (wait !== undefined) return new RetryableError(`${provider} rate limit reached ${what}`, { cause: err, retryAfterMs: wait });
  if (answer.status === 401 || answer.status === 403) {
    return new PermanentError(
      `${provider} refused ${what} (HTTP ${answer.status}): check that ${TOKEN[provider]} is valid and can read the repository`,
      { cause: err },
    );
  }
  if (answer.status !== undefined) return byStatus(answer.status, message, { cause: err });
  const classified = classify(err);
  return classified.retryable ? new RetryableError(message, { cause: err }) : classified;
}
