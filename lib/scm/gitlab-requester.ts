import { createRequesterFn, type FormattedResponse, type RequestOptions } from "@gitbeaker/requester-utils";
import { GitbeakerRequestError } from "@gitbeaker/rest";

/**
 * gitbeaker's requester with its retries off: @gitbeaker/rest's own handler sends a request
 * that met a 429 or a 502 ten times, a fraction of a millisecond apart, then throws the
 * answer's status and Retry-After away. This one sends each request once and throws
 * gitbeaker's own error with the answer (`cause.response`), so lib/scm/errors.ts reads its
 * status and Retry-After and the caller retries with backoff. The request options (URL, query,
 * JSON body, token header) are gitbeaker's own, from `createRequesterFn`.
 */
export const singleAttemptRequester = createRequesterFn((_service, options) => Promise.resolve(options), sendOnce);

async function sendOnce(endpoint: string, raw: Record<string, unknown> = {}): Promise<FormattedResponse> {
  const options = raw as RequestOptions;
  const prefix = options.prefixUrl ?? "";
  const url = new URL(endpoint, prefix.endsWith("/") ? prefix : `${prefix}/`);
  url.search = options.searchParams ?? "";
  const request = new Request(url, {
    method: options.method ?? "GET",
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const response = await fetch(request);
  if (!response.ok) {
    const description = await describe(response);
    throw new GitbeakerRequestError(description, { cause: { description, request, response } });
  }
  const json = (response.headers.get("content-type") ?? "").includes("json");
  const body = response.status === 204 ? null : json ? ((await response.json()) as FormattedResponse["body"]) : await response.text();
  return { body, headers: Object.fromEntries(response.headers.entries()), status: response.status };
}

/** GitLab's error text: `{"message": ...}`, `{"error": ...}` (a parameter refused), or the body itself. */
async function describe(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as { message?: unknown; error?: unknown };
    const said = parsed.error ?? parsed.message;
    if (said !== undefined) return typeof said === "string" ? said : JSON.stringify(said);
  } catch {
    // Not JSON (a proxy's HTML page): the text says what happened.
  }
  return text.slice(0, 1000) || `HTTP ${response.status}`;
}
