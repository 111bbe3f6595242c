import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Worker } from "node:worker_threads";

export interface EmbeddedServers {
  dynamodb: string;
  sqs: string;
  stop(): Promise<void>;
}

/**
 * Starts dynalite (on disk under `dataDir`, or in memory) and local-aws-sqs in a worker
 * thread, so their request handling never competes with webhooks on the main event loop.
 */
export async function startEmbeddedServers(dataDir: string | undefined): Promise<EmbeddedServers> {
  const path = dataDir ? join(resolve(dataDir), "table") : undefined;
  if (path) await mkdir(path, { recursive: true });
  const worker = new Worker(new URL("./servers.mjs", import.meta.url), { workerData: { hoistServers: { dataDir: path } } });
  const urls = await new Promise<{ dynamodb: string; sqs: string }>((resolveUrls, reject) => {
    worker.once("message", resolveUrls);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`embedded servers exited with code ${code} before they started`)));
  });
  return {
    ...urls,
    stop: async () => {
      await worker.terminate();
    },
  };
}
