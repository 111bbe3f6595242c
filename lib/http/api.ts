import { Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import * as z from "zod";
import { quoted, RunId } from "../pipeline/names.ts";
import { MAX_STAGES } from "../pipeline/size.ts";
import type { Clock } from "../clock.ts";
import { cancelRun } from "../runs/cancel.ts";
import type { RunObserver } from "../runs/observer.ts";
import { parse } from "./app.ts";
import { deliveryRoutes } from "./deliveries.ts";
import { environmentRoutes, type EnvironmentApiOptions } from "./environments.ts";
import { registryRoutes, type RegistryApiOptions } from "./registries.ts";
import { runActionRoutes, type RunActionOptions } from "./run-actions.ts";
import { variableRoutes, type VariableApiOptions } from "./variables.ts";
import type { DeliveryStore } from "../store/deliveries.ts";
import type { Queue } from "../queue/port.ts";
import { RunFilter, type RunStore } from "../store/port.ts";

export interface ApiOptions {
  store: RunStore;
  /** Wakes a cancelled run's worker. */
  queue: Pick<Queue, "send">;
  environments?: EnvironmentApiOptions;
  registries?: RegistryApiOptions;
  /** Environments' variables and secrets. */
  variables?: VariableApiOptions;
  /** Push deliveries, for GET /api/deliveries/:id. */
  deliveries?: DeliveryStore;
  /** Told of what people do to runs (commit statuses, chat). */
  observer?: RunObserver;
  /** Manual runs: reads `.hoist.yml` and resolves refs; unset, POST /api/pipelines/... answers 503. */
  trigger?: RunActionOptions["trigger"];
  clock: Clock;
  /** Unset: the API answers 503 to everything, never serves data unauthenticated. */
  token?: string;
}

const LogsQuery = z.object({ stage: z.coerce.number().int().min(0).max(MAX_STAGES - 1).optional(), format: z.enum(["json", "text"]).optional() }).strict();

/**
 * The run id in the path. One that Hoist never makes names no run: 404 without asking the
 * table (which refuses an over-long key with an error of its own).
 */
function runIdParam(id: string): string {
  if (!RunId.safeParse(id).success) throw noRun(id);
  return id;
}

function noRun(id: string): HTTPException {
  return new HTTPException(404, { message: `no run ${quoted(id)}: list runs with GET /api/runs` });
}

/** What a request without the right token is told, as JSON like every other error. */
const NO_TOKEN = { error: "missing or wrong API token: send `Authorization: Bearer <HOIST_API_TOKEN>` (the server's HOIST_API_TOKEN)" };
const BEARER_ANSWERS = {
  noAuthenticationHeader: { message: NO_TOKEN },
  invalidToken: { message: NO_TOKEN },
  invalidAuthenticationHeader: { message: { error: "malformed Authorization header: send `Authorization: Bearer <HOIST_API_TOKEN>`" } },
};

/** Environments and rollback requests are a few hundred bytes; the largest bodies are variables' values, which this bounds. */
const MAX_BODY_BYTES = 64 * 1024;

/** GET /api/runs, /api/runs/:id, /api/runs/:id/logs, POST /api/runs/:id/cancel (and run-actions.ts: approve, rerun, trigger), behind a bearer token. */
export function apiRoutes(opts: ApiOptions): Hono {
  const app = new Hono();
  app.use("/api/*", async (c, next) => {
    if (!opts.token) throw new HTTPException(503, { message: "the API is disabled: set HOIST_API_TOKEN on the server" });
    return bearerAuth({ token: opts.token, ...BEARER_ANSWERS })(c, next);
  });
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.json({ error: `body over ${MAX_BODY_BYTES / 1024} KiB: the API takes small JSON documents` }, 413),
    }),
  );

  app.get("/api/runs", async (c) => {
    const q = parse(RunFilter, c.req.query());
    const page = await opts.store.listRuns(q);
    return c.json(page);
  });

  app.get("/api/runs/:id", async (c) => {
    const id = runIdParam(c.req.param("id"));
    const stored = await opts.store.getRun(id);
    if (!stored) throw noRun(id);
    return c.json(stored.run);
  });

  app.get("/api/runs/:id/logs", async (c) => {
    const id = runIdParam(c.req.param("id"));
    const q = parse(LogsQuery, c.req.query());
    const stored = await opts.store.getRun(id);
    if (!stored) throw noRun(id);
    const chunks = await opts.store.readLogs(stored.run.id, q.stage);
    const stages = stored.run.stages
      .map((s, i) => ({ stage: i, name: s.name, status: s.status, text: chunks.filter((ch) => ch.stage === i).map((ch) => ch.text).join("") }))
      .filter((s) => q.stage === undefined || s.stage === q.stage);
    if (q.format === "text") return c.text(stages.map((s) => `=== ${s.name} (${s.status}) ===\n${s.text}`).join("\n"));
    return c.json({ runId: stored.run.id, stages });
  });

  app.post("/api/runs/:id/cancel", async (c) => {
    const id = runIdParam(c.req.param("id"));
    const result = await cancelRun(opts.store, opts.queue, opts.clock, id, "the API", opts.observer);
    if ("missing" in result) throw noRun(id);
    if ("alreadyFinal" in result) return c.json({ error: `run already ${result.alreadyFinal.status}`, run: result.alreadyFinal }, 409);
    return c.json(result.cancelled, 202);
  });

  app.route("/", runActionRoutes({ store: opts.store, queue: opts.queue, clock: opts.clock, ...(opts.observer ? { observer: opts.observer } : {}), ...(opts.trigger ? { trigger: opts.trigger } : {}) }));
  if (opts.environments) app.route("/", environmentRoutes(opts.environments));
  if (opts.registries) app.route("/", registryRoutes(opts.registries));
  if (opts.variables) app.route("/", variableRoutes(opts.variables));
  if (opts.deliveries) app.route("/", deliveryRoutes({ deliveries: opts.deliveries, store: opts.store }));
  return app;
}

