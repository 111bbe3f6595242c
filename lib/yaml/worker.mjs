// The parse worker: reads YAML documents one message at a time (see isolate.ts for the bounds
// on its memory, stack and time). Plain JavaScript so that it loads under Node, tsx and vitest alike.
import { parentPort } from "node:worker_threads";
import { readYaml } from "./read.mjs";

if (!parentPort) throw new Error("lib/yaml/worker.mjs runs as a worker thread");
const port = parentPort;
port.on("message", (/** @type {{ id: number; text: string; options: import("./read.d.mts").ReadOptions }} */ job) => {
  /** @type {import("./read.d.mts").ReadResult} */
  let result;
  try {
    result = readYaml(job.text, job.options);
  } catch (e) {
    result = { ok: false, message: `could not be read: ${e instanceof Error ? e.message : String(e)}` };
  }
  port.postMessage({ id: job.id, result });
});
