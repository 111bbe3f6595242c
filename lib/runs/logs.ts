import type { RunStore } from "../store/port.ts";

/** Chunk size of stored step logs: far below DynamoDB's 400 KB item limit. */
const LOG_CHUNK = 16 * 1024;

/** A stage's log as the worker writes it: redacted, in fixed-offset chunks. */
export interface LogSink {
  /** Appends a line Hoist itself writes. */
  write(text: string): Promise<void>;
  /** The job's whole output so far (jobs report everything each time): stores what is new. */
  replace(jobOutput: string): Promise<void>;
}

/**
 * Chunks sit at fixed offsets (`LOG#<stage>#<offset>`), so writing a chunk twice stores the
 * same item: a re-driven worker may repeat a write without duplicating any line.
 */
export function logSink(store: RunStore, runId: string, stage: number, redact: (s: string) => string, prior = ""): LogSink {
  // The job's output comes first and only grows; Hoist's own lines follow it (after `prior`,
  // the stored log of a stage with no job that an earlier worker began).
  let job = "";
  let notes = prior;
  // Writes go out one drain at a time, so an older, shorter chunk never lands after a newer one.
  let dirtyFrom = Infinity;
  let draining: Promise<void> | undefined;
  const drain = async () => {
    while (dirtyFrom !== Infinity) {
      const text = redact(job + notes);
      // Offsets are of the raw text and redaction may shorten it: never start past the end.
      const from = Math.min(dirtyFrom, text.length);
      dirtyFrom = Infinity;
      try {
        for (let start = Math.floor(from / LOG_CHUNK) * LOG_CHUNK; start < text.length; start += LOG_CHUNK)
          await store.putLog(runId, { stage, offset: start, text: text.slice(start, start + LOG_CHUNK) });
      } catch (err) {
        dirtyFrom = Math.min(dirtyFrom, from); // the next write retries what this one missed
        throw err;
      }
    }
  };
  /** Rewrites every chunk from the one holding `from`, the first character that changed. */
  const flush = (from: number): Promise<void> => {
    dirtyFrom = Math.min(dirtyFrom, from);
    // Cleared once settled, so the next change starts a new drain.
    draining ??= drain().finally(() => {
      draining = undefined;
    });
    return draining;
  };
  return {
    write(text) {
      const from = job.length + notes.length;
      notes += text;
      return flush(from);
    },
    async replace(output) {
      if (output.length === job.length) return;
      const from = Math.min(job.length, output.length);
      job = output;
      return flush(from);
    },
  };
}
