import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Worker } from "node:worker_threads";

export interface EmbeddedServers {
  dynamodb: string;
  sqs: string;
  stop(): Promise<void>;
}

/**
 * Starts dynalite (on disk under `dataDir`, or in memory) and local-aws-sqs, each in a
 * worker thread of its own, so their request handling never competes with webhooks on the
 * main event loop, and a burst of queue traffic does not wait behind table writes.
 */
export async function startEmbeddedServers(dataDir: string | undefined): Promise<EmbeddedServers> {
  const path = dataDir ? join(resolve(dataDir), "table") : undefined;
  if (path) await mkdir(path, { recursive: true });
  const workers: Worker[] = [];
  const start = (server: { kind: "dynamodb" } | { kind: "sqs" }, opts: object = {}) =>
    new Promise<string>((resolveUrl, reject) => {
      const worker = new Worker(new URL("./servers.mjs", import.meta.url), { workerData: { hoistServer: { ...server, ...opts } } });
      workers.push(worker);
      worker.once("message", (m: { url: string }) => resolveUrl(m.url));
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`embedded ${server.kind} server exited with code ${code} before it started`)));
    });
  const stop = async () => {
    await Promise.all(workers.map((w) => w.terminate()));
  };
  try {
    const [dynamodb, sqs] = await Promise.all([start({ kind: "dynamodb" }, { dataDir: path }), start({ kind: "sqs" })]);
    return { dynamodb, sqs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
