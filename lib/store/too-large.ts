import { PermanentError } from "../errors.ts";

/**
 * A record that can never be written: over DynamoDB's item limit. Trying again cannot help;
 * the caller must write a smaller record (a run: failOversized in lib/pipeline/machine.ts).
 */
export class RecordTooLargeError extends PermanentError {
  override name = "RecordTooLargeError";
  readonly bytes: number | undefined;

  constructor(message: string, opts: { bytes?: number; cause?: unknown } = {}) {
    super(message, { status: 413, ...(opts.cause === undefined ? {} : { cause: opts.cause }), context: { bytes: opts.bytes } });
    this.bytes = opts.bytes;
  }
}
