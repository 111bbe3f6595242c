import type { RunStore } from "../store/port.ts";

/** Chunk size of stored step logs: far below DynamoDB's 400 KB item limit. */
const LOG_CHUNK = 16 * 1024;

/**
 * How often a stage's log is stored while lines keep coming: each store rewrites the last
 * chunk, so a stage's dozen progress lines cost one or two writes rather than a dozen, and
 * someone following the log sees them within this long.
 */
export const LOG_EVERY_MS = 1_000;

/** A stage's log as the worker writes it: redacted, in fixed-offset chunks. */
export interface LogSink {
  /** Appends a line Hoist itself writes; stored within LOG_EVERY_MS. */
  write(text: string): void;
  /** The job's whole output so far (jobs report everything each time): what is new is stored within LOG_EVERY_MS. */
  replace(jobOutput: string): void;
  /** Stores what is not stored yet, now; throws what a store since the last flush failed with. */
  flush(): Promise<void>;
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
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastStored = 0;
  const start = (): Promise<void> =>
    // Cleared once settled, so the next change starts a new drain.
    (draining ??= drain().finally(() => {
      draining = undefined;
      lastStored = Date.now();
    }));
  /** Marks every chunk from the one holding `from` (the first character that changed) for the next store. */
  const changed = (from: number): void => {
    dirtyFrom = Math.min(dirtyFrom, from);
    timer ??= setTimeout(() => {
      timer = undefined;
      // A store that fails here is tried again by the next one, and by flush.
      start().catch(() => undefined);
    }, Math.max(0, lastStored + LOG_EVERY_MS - Date.now()));
  };
  return {
    write(text) {
      const from = job.length + notes.length;
      notes += text;
      changed(from);
    },
    replace(output) {
      if (output.length === job.length) return;
      const from = Math.min(job.length, output.length);
      job = output;
      changed(from);
    },
    async flush() {
      clearTimeout(timer);
      timer = undefined;
      // A drain under way may have failed: what it missed is still marked, and stored now.
      await draining?.catch(() => undefined);
      await start();
    },
  };
}