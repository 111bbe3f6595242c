import { request } from "node:http";
import type { HealthProbe } from "./ports.ts";

/** The HealthProbe port over HTTP: one GET on a fresh connection (no agent), bounded by the check's timeout. */
export const httpProbe: HealthProbe = {
  get: (address, port, check) =>
    new Promise((resolve) => {
      const req = request({ host: address, port, path: check.path, method: "GET", timeout: check.timeoutMs, agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
        res.on("error", (err) => resolve({ error: err.message }));
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${check.timeoutMs} ms`)));
      req.on("error", (err) => resolve({ error: err.message }));
      req.end();
    }),
};
