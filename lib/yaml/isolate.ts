import { Worker } from "node:worker_threads";
import { formatBytes, type YamlLimits } from "./limits.ts";
import { at } from "./locate.ts";
import type { LineTree, ReadOptions, ReadResult } from "./read.mjs";

/**
 * Untrusted YAML is read in a worker thread, never in the process serving webhooks: whatever a
 * file does to the parser (stack, memory, time), the worst outcome is a failed read and a new
 * worker. One warm worker is kept (spawning costs tens of milliseconds) and reads queue through it.
 */

export type YamlRead = { ok: true; value: unknown; lines: LineTree } | { ok: false; error: string };

export interface YamlFileOptions {
  /** The name used in messages: `.hoist.yml`, `deploy/compose.yml`. */
  file: string;
  limits: YamlLimits;
  /** YAML 1.1 `<<` merge keys. */
  merge?: boolean;
}

export interface IsolateOptions {
  /** A read that takes longer is stopped (its worker terminated) and fails. */
  deadlineMs: number;
  resourceLimits: { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb: number; stackSizeMb: number };
}

/** A 1 MiB compose file reads in about a second on an idle host; the rest is headroom for a busy one. */
export const DEFAULT_ISOLATE: IsolateOptions = {
  deadlineMs: 10_000,
  resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 },
};

interface Job {
  id: number;
  text: string;
  options: ReadOptions;
  done: (r: ReadResult) => void;
}

/** A reader of YAML files in a worker thread with resource limits and a deadline. */
export class YamlIsolate {
  private worker: Worker | undefined;
  private readonly queue: Job[] = [];
  private current: { job: Job; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;

  constructor(private readonly opts: IsolateOptions = DEFAULT_ISOLATE) {}

  /** Reads `text` within `limits`. Never rejects: every refusal is a message naming the file (and line). */
  async read(text: string, { file, limits, merge = false }: YamlFileOptions): Promise<YamlRead> {
    // Checked here so an oversized text never crosses to the worker; length ≤ UTF-8 bytes.
    if (text.length > limits.maxBytes || Buffer.byteLength(text, "utf8") > limits.maxBytes) return { ok: false, error: at(file, undefined, `larger than ${formatBytes(limits.maxBytes)}`) };
    const result = await new Promise<ReadResult>((done) => {
      this.queue.push({ id: this.nextId++, text, options: { limits, merge }, done });
      this.pump();
    });
    return result.ok ? result : { ok: false, error: at(file, result.line, result.message) };
  }

  /** Stops the worker (tests; the process otherwise exits with it idle). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private pump(): void {
    if (this.current) return;
    const job = this.queue.shift();
    if (!job) {
      this.worker?.unref();
      return;
    }
    const worker = this.worker ?? this.spawn();
    worker.ref();
    const timer = setTimeout(() => this.fail(worker, `took longer than ${this.opts.deadlineMs / 1000} s to read`), this.opts.deadlineMs);
    this.current = { job, timer };
    worker.postMessage({ id: job.id, text: job.text, options: job.options });
  }

  private spawn(): Worker {
    // Plain JavaScript: no loader flags (tsx's would double its start-up) are passed on.
    const worker = new Worker(new URL("./worker.mjs", import.meta.url), { resourceLimits: this.opts.resourceLimits, execArgv: [] });
    this.worker = worker;
    worker.on("message", (m: { id: number; result: ReadResult }) => {
      if (worker !== this.worker || this.current?.job.id !== m.id) return;
      this.finish(m.result);
    });
    worker.on("error", (err: Error & { code?: string }) =>
      this.fail(worker, err.code === "ERR_WORKER_OUT_OF_MEMORY" ? "could not be read: the YAML parser ran out of memory" : `could not be read: ${err.message}`),
    );
    worker.on("exit", (code) => this.fail(worker, `could not be read: the YAML parser stopped (exit code ${code})`));
    return worker;
  }

  /** The worker is lost (deadline, crash, exit): the read in flight fails, the next one gets a new worker. */
  private fail(worker: Worker, message: string): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    void worker.terminate();
    if (this.current) this.finish({ ok: false, message });
  }

  private finish(result: ReadResult): void {
    const current = this.current;
    if (!current) return;
    clearTimeout(current.timer);
    this.current = undefined;
    current.job.done(result);
    this.pump();
  }
}

const shared = new YamlIsolate();

/** Reads an untrusted YAML file through the process's shared parse worker. */
export function readYamlFile(text: string, options: YamlFileOptions): Promise<YamlRead> {
  return shared.read(text, options);
}
