import { Writable } from "node:stream";

/**
 * What a local runtime logs, as it happens: a delivery resolved into its runs, a run finished.
 * Benches wait on these lines rather than polling the table, whose reads would share the two
 * cores with the work being timed (and, in bench/cost, be counted).
 */
export function runLog() {
  const resolved = new Map<string, string[]>();
  const finished = new Map<string, { status?: string; error?: string }>();
  let wake: () => void = () => undefined;
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) {
        const entry = JSON.parse(line) as { msg?: string; delivery?: string; runs?: string[]; run?: string; status?: string; error?: string };
        if (entry.msg === "delivery resolved" && entry.delivery) resolved.set(entry.delivery, entry.runs ?? []);
        if (entry.msg === "run finished" && entry.run) finished.set(entry.run, { status: entry.status, error: entry.error });
      }
      wake();
      done();
    },
  });
  /** What `find` gives once the log shows it; fails after `ms`. */
  async function until<T>(what: string, find: () => T | undefined, ms: number): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`${what} did not happen in ${ms / 1000} s`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 250);
      });
    }
  }
  return { sink, resolved, finished, until };
}
