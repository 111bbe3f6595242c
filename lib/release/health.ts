import { request } from "node:http";

export interface HttpHealth {
  path: string;
  status: number;
  timeoutMs: number;
  intervalMs: number;
  retries: number;
}

/** One GET of the health path; the answer's status, or why there was none. */
export function probe(address: string, port: number, health: Pick<HttpHealth, "path" | "timeoutMs">): Promise<{ status: number } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host: address, port, path: health.path, method: "GET", timeout: health.timeoutMs, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
      res.on("error", (err) => resolve({ error: err.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${health.timeoutMs} ms`)));
    req.on("error", (err) => resolve({ error: err.message }));
    req.end();
  });
}

/**
 * Probes until the instance answers the expected status, up to `retries` times `intervalMs`
 * apart. Resolves to undefined when healthy, else to what the last probe saw.
 */
export async function waitHealthy(address: string, port: number, health: HttpHealth, sleep: (ms: number) => Promise<void>): Promise<string | undefined> {
  let last = "not probed";
  for (let attempt = 0; attempt <= health.retries; attempt++) {
    const answer = await probe(address, port, health);
    if ("status" in answer && answer.status === health.status) return undefined;
    last = "status" in answer ? `answered ${answer.status}` : answer.error;
    if (attempt < health.retries) await sleep(health.intervalMs);
  }
  return `GET ${health.path} ${last} (expected ${health.status})`;
}
