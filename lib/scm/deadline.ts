import { RetryableError } from "../errors.ts";

/** How long a provider call waits for its answer unless told otherwise. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** How long a whole archive download may take: repositories can be large. */
export const DEFAULT_ARCHIVE_TIMEOUT_MS = 10 * 60_000;

/**
 * An AbortSignal that fires after `ms` with a RetryableError saying what did not happen in
 * time (an outage, so the worker tries again later); `clear` disarms it once that has come.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(ms: number, what: string) {
    this.timer = setTimeout(() => this.controller.abort(new RetryableError(`${what} within ${ms / 1000} s`)), ms);
    // A pending deadline must not keep a finished process alive.
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The error it fired with, if it has fired. */
  get error(): RetryableError | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as RetryableError) : undefined;
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}
