import { classify } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { ApprovalRequest, ChatNotifier, Notice } from "./port.ts";

/** How long one channel may take over one message before it is given up. */
export const DEFAULT_NOTIFY_TIMEOUT_MS = 15_000;

export interface ChannelNotifier {
  /** For log lines: "slack", "dingtalk". */
  channel: string;
  notifier: ChatNotifier;
}

export interface FanOutOptions {
  log: Logger;
  timeoutMs?: number;
}

/**
 * Every configured channel as one ChatNotifier, the one the core holds. It never throws and
 * never waits past its deadline: a chat outage is logged and swallowed, because telling people
 * about a run must never fail or stall the run (the run's page and API still show its state).
 */
export function fanOut(channels: readonly ChannelNotifier[], opts: FanOutOptions): ChatNotifier {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_NOTIFY_TIMEOUT_MS;
  const each = async (what: string, runId: string, call: (n: ChatNotifier) => Promise<void>) => {
    await Promise.all(
      channels.map(async ({ channel, notifier }) => {
        try {
          await within(timeoutMs, `${channel} ${what}`, () => call(notifier));
        } catch (err) {
          opts.log.warn({ channel, runId, what, err: classify(err).message }, "chat message not delivered");
        }
      }),
    );
  };
  return {
    approvalRequested: (req: ApprovalRequest) => each("approval request", req.runId, (n) => n.approvalRequested(req)),
    notify: (notice: Notice) => each(`${notice.kind} notice`, notice.runId, (n) => n.notify(notice)),
  };
}

/** `fn`'s result, or a rejection once `ms` have passed (the call itself is bounded by its own timeout). */
async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    timer.unref?.();
  });
  try {
    return await Promise.race([fn(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
