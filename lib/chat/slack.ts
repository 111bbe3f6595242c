import { ErrorCode, LogLevel, WebClient, type Logger as SlackLogger, type WebAPICallError } from "@slack/web-api";
import { BadInputError, byStatus, classify, PermanentError, RetryableError, type HoistError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ApprovalRequest, Notice } from "./port.ts";
import { approvalRequestMessage, noticeMessage, type SlackMessage } from "./slack-messages.ts";

/**
 * The few Slack Web API calls Hoist makes, over @slack/web-api's WebClient. Every call is
 * bounded: a timeout per request, no retries (the notifier's deadline and the queue retry at
 * their level), and a rate-limited call fails at once instead of sleeping for Slack's
 * Retry-After. Errors are the project's tree: Slack's own `ok: false` answers are permanent
 * unless they mean Slack is busy.
 */

export const SLACK_API_URL = "https://slack.com/api/";
/** Where Slack's response_url webhooks live (https://api.slack.com/interactivity/handling#message_responses). */
export const SLACK_HOOKS_ORIGIN = "https://hooks.slack.com";
export const DEFAULT_SLACK_TIMEOUT_MS = 10_000;

export interface SlackOptions {
  token: string;
  /** The Web API base, SLACK_API_URL unless a test or a proxy stands in. */
  apiUrl?: string;
  timeoutMs?: number;
  log?: Logger;
  /** A ready-made client; built from the options above otherwise. */
  client?: WebClient;
}

export interface PostedMessage {
  channel: string;
  ts: string;
}

/** Slack's answers that mean "not now" rather than "never" (https://api.slack.com/methods/chat.postMessage#errors). */
const BUSY = new Set(["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"]);

export class SlackAdapter {
  private readonly client: WebClient;
  private readonly timeoutMs: number;
  /** The origin response_url posts may go to besides Slack's: the configured API's, for tests. */
  private readonly apiOrigin: string;

  constructor(opts: SlackOptions) {
    const apiUrl = opts.apiUrl ?? SLACK_API_URL;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_SLACK_TIMEOUT_MS;
    this.apiOrigin = new URL(apiUrl).origin;
    this.client =
      opts.client ??
      new WebClient(opts.token, {
        // WebClient joins the base and the method name as strings.
        slackApiUrl: apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`,
        timeout: this.timeoutMs,
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        // A method name is never a URL here: calls go to the configured API only.
        allowAbsoluteUrls: false,
        ...(opts.log ? { logger: slackLogger(opts.log) } : { logLevel: LogLevel.ERROR }),
      });
  }

  /** Posts an approval request with its buttons; its `ts` is what a later update names. */
  postApprovalRequest(channel: string, req: ApprovalRequest): Promise<PostedMessage> {
    return this.post(channel, approvalRequestMessage(req));
  }

  postNotice(channel: string, notice: Notice): Promise<PostedMessage> {
    return this.post(channel, noticeMessage(notice));
  }

  /**
   * The email the workspace verified for a user (users.info; the app needs the users:read.email
   * scope), or undefined when Slack gives none: what self-approval matches against a pusher's.
   */
  async userEmail(user: string): Promise<string | undefined> {
    const out = await this.call("users.info", () => this.client.users.info({ user }));
    const email = out.user?.profile?.email;
    return typeof email === "string" && email.length > 0 && email.length <= 254 ? email : undefined;
  }

  /** Replaces a message Hoist posted (chat.update). */
  async updateMessage(channel: string, ts: string, message: SlackMessage): Promise<void> {
    await this.call("chat.update", () => this.client.chat.update({ channel, ts, text: message.text, blocks: message.blocks }));
  }

  /**
   * Answers a click through its response_url: replacing the message clicked, or, `ephemeral`,
   * telling only the clicker. Only Slack's hooks (or the configured API's origin) are posted
   * to, so a payload cannot point Hoist at another URL.
   */
  async postToResponseUrl(url: string, message: SlackMessage, opts: { ephemeral?: boolean } = {}): Promise<void> {
    const target = this.responseUrl(url);
    const body = opts.ephemeral ? { ...message, response_type: "ephemeral", replace_original: false } : { ...message, replace_original: true };
    let res: Response;
    try {
      res = await fetch(target, {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8" },
        body: JSON.stringify(body),
        redirect: "error",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await res.body?.cancel();
    } catch (err) {
      // Not `cause`: a fetch error may quote the URL, which is a credential for this message.
      throw new RetryableError(`Slack's response_url did not answer: ${classify(err).message.split(url).join("<response_url>")}`);
    }
    if (!res.ok) throw byStatus(res.status, `Slack's response_url answered HTTP ${res.status}`);
  }

  private responseUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new BadInputError("response_url is not a URL");
    }
    const slack = url.origin === SLACK_HOOKS_ORIGIN;
    if ((!slack && url.origin !== this.apiOrigin) || url.username || url.password)
      throw new BadInputError(`response_url must be on ${SLACK_HOOKS_ORIGIN}`);
    return url;
  }

  private async post(channel: string, message: SlackMessage): Promise<PostedMessage> {
    const out = await this.call("chat.postMessage", () => this.client.chat.postMessage({ channel, text: message.text, blocks: message.blocks }));
    if (!out.channel || !out.ts) throw new PermanentError("Slack's chat.postMessage answered without a channel and ts");
    return { channel: out.channel, ts: out.ts };
  }

  private async call<T>(method: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw slackError(method, err);
    }
  }
}

/** A WebClient failure as the project's error, naming the method and what Slack said. */
function slackError(method: string, err: unknown): HoistError {
  const e = err as Partial<WebAPICallError> & { code?: unknown };
  switch (e.code) {
    case ErrorCode.PlatformError: {
      const said = String((e as { data?: { error?: unknown } }).data?.error ?? "unknown_error");
      const message = `Slack ${method}: ${said}`;
      return BUSY.has(said) ? new RetryableError(message) : new PermanentError(message);
    }
    case ErrorCode.RateLimitedError:
      return new RetryableError(`Slack ${method}: rate limited`, { retryAfterMs: Number((e as { retryAfter?: unknown }).retryAfter) * 1000 || undefined });
    case ErrorCode.HTTPError:
      return byStatus(Number((e as { statusCode?: unknown }).statusCode), `Slack ${method}: HTTP ${(e as { statusCode?: unknown }).statusCode}`);
    case ErrorCode.RequestError: {
      const inner = classify((e as { original?: unknown }).original);
      return inner.retryable ? new RetryableError(`Slack ${method}: ${inner.message}`) : new PermanentError(`Slack ${method}: ${inner.message}`);
    }
    default:
      return classify(err);
  }
}

/** WebClient's log lines, into ours; its warnings are about our calls, so they stay visible at debug. */
function slackLogger(log: Logger): SlackLogger {
  const line = (level: "debug" | "warn" | "error") => (...msg: unknown[]) => log[level]({ slack: true }, msg.map(String).join(" "));
  return {
    debug: line("debug"),
    info: line("debug"),
    warn: line("warn"),
    error: line("error"),
    setLevel: () => undefined,
    getLevel: () => LogLevel.DEBUG,
    setName: () => undefined,
  };
}
