import { Worker } from "node:worker_threads";

/**
 * Steady HTTP load for zero-downtime tests. It runs in a worker thread: a test that blocks or
 * busies its own event loop while it acts must not stop or delay the traffic it is judged by.
 */

export interface LoadReport {
  /** Requests started. */
  sent: number;
  /** Requests that did not answer 2xx (including those unfinished 5 s after stop). */
  failed: number;
  /** Up to 20 examples, e.g. "+1.234s status 503". */
  failures: string[];
  /** 99th percentile latency in ms of requests started between the marks (whole run by default); NaN if none. */
  p99(fromLabel?: string, toLabel?: string): number;
  /** Latencies in ms of requests started between the marks, to pool several windows into one percentile. */
  latencies(fromLabel?: string, toLabel?: string): number[];
  /** How often each 2xx body (trimmed, e.g. "v1") was seen in requests started after the mark. */
  bodies(fromLabel?: string): Map<string, number>;
  /** The `n` slowest requests started between the marks: when each started (ms after `fromLabel`) and its latency. */
  slowest(n: number, fromLabel: string, toLabel?: string): { at: number; latency: number }[];
}

export interface Load {
  /** Records the current time under `label` (the first mark of a label counts). */
  mark(label: string): void;
  /** Stops sending, waits for requests in flight (up to 5 s each), and reports. */
  stop(): Promise<LoadReport>;
}

interface RequestRecord {
  /** Date.now() when sent: one clock for this thread and the worker's. */
  start: number;
  latency: number;
  ok: boolean;
  reason?: string;
  body: string;
}

type WorkerMessage = { type: "ready" } | { type: "report"; records: RequestRecord[] };

/** `host`: the Host header every request carries (a router that picks the backend by it). */
export async function startLoad(url: string, rps: number, host?: string): Promise<Load> {
  if (!(rps > 0)) throw new Error(`rps must be positive, got ${rps}`);
  const worker = new Worker(new URL("./load-worker.mjs", import.meta.url), { workerData: { url, rps, host } });
  const marks = new Map<string, number>();
  const startedAt = Date.now();

  const report = new Promise<RequestRecord[]>((resolve, reject) => {
    worker.on("message", (message: WorkerMessage) => {
      if (message.type === "report") resolve(message.records);
    });
    worker.on("error", reject);
    worker.on("exit", (code) => reject(new Error(`the load worker exited (${code}) before reporting`)));
  });
  // Until stop() awaits it, a crash must not become an unhandled rejection.
  report.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    worker.once("error", reject);
  });

  return {
    mark(label) {
      if (!marks.has(label)) marks.set(label, Date.now());
    },
    async stop() {
      worker.postMessage({ type: "stop" });
      const records = await report;
      await worker.terminate();
      return summarize(records, marks, startedAt);
    },
  };
}

function summarize(records: RequestRecord[], marks: Map<string, number>, startedAt: number): LoadReport {
  const at = (label: string | undefined, fallback: number): number => {
    if (label === undefined) return fallback;
    const time = marks.get(label);
    if (time === undefined) throw new Error(`no load mark "${label}" (marks: ${[...marks.keys()].join(", ") || "none"})`);
    return time;
  };
  const between = (from?: string, to?: string): RequestRecord[] => {
    const start = at(from, -Infinity);
    const end = at(to, Infinity);
    return records.filter((r) => r.start >= start && r.start < end);
  };
  const failedRecords = records.filter((r) => !r.ok);
  return {
    sent: records.length,
    failed: failedRecords.length,
    failures: failedRecords.slice(0, 20).map((r) => `+${((r.start - startedAt) / 1000).toFixed(3)}s ${r.reason ?? "failed"}`),
    p99(fromLabel, toLabel) {
      return percentile(between(fromLabel, toLabel).map((r) => r.latency), 0.99);
    },
    latencies(fromLabel, toLabel) {
      return between(fromLabel, toLabel).map((r) => r.latency);
    },
    slowest(n, fromLabel, toLabel) {
      const from = at(fromLabel, 0);
      return between(fromLabel, toLabel)
        .sort((a, b) => b.latency - a.latency)
        .slice(0, n)
        .map((r) => ({ at: r.start - from, latency: r.latency }));
    },
    bodies(fromLabel) {
      const counts = new Map<string, number>();
      for (const r of between(fromLabel)) if (r.ok) counts.set(r.body, (counts.get(r.body) ?? 0) + 1);
      return counts;
    },
  };
}

/** The nearest-rank percentile (`q` in 0..1) of `values`; NaN if there are none. */
export function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : (sorted[Math.ceil(sorted.length * q) - 1] ?? Number.NaN);
}
