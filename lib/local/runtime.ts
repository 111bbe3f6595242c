import { serve, type ServerType } from "@hono/node-server";
import { readFile, rm } from "node:fs/promises";
import { loadConfig, type Config, type Env } from "../config.ts";
import { Environment, parseEnvironmentsFile } from "../release/environment.ts";
import { LOCAL_ENGINE } from "../engine/access.ts";
import { ensureLocalRouter } from "./router.ts";

import { httpApp } from "../http/server.ts";
import { handleWakeUp } from "../runs/wake.ts";
import { watchEnvironments } from "../release/watch.ts";
import { fireSchedules } from "../runs/cron.ts";
import { reconcile } from "../runs/reconcile.ts";
import { createServices, type ServiceOverrides, type Services } from "../services.ts";
import { ensureTable } from "../store/dynamo-table.ts";
import { startEmbeddedServers } from "./embedded.ts";
import { startPoller } from "./poller.ts";
import { runtimeFile, writeRuntimeFile } from "./runtime-file.ts";

export interface LocalRuntime {
  url: string;
  services: Services;
  stop(): Promise<void>;
}

/**
 * Every function in one process: HTTP (webhooks + API), the worker polling the queue and
 * the reconciler on a timer, over an embedded table and queue unless endpoints of real
 * services are configured.
 */
export interface LocalOptions {
  /** Run the worker and reconciler (default). Off: HTTP only, e.g. to measure ingestion alone. */
  workers?: boolean;
}

export async function startLocal(
  env: Env,
  overrides: ServiceOverrides = {},
  options: LocalOptions = {},
): Promise<LocalRuntime> {
  let config: Config = loadConfig(env);
  // Read before anything starts: a broken file stops here with its error, leaving nothing running.
  const file = config.HOIST_ENVIRONMENTS_FILE;
  const environments = file ? parseEnvironmentsFile(await readFile(file, "utf8"), file) : [];
  const embedded =
    config.AWS_ENDPOINT_URL_DYNAMODB && (config.AWS_ENDPOINT_URL_SQS || config.HOIST_QUEUE_URL)
      ? undefined
      : await startEmbeddedServers(config.HOIST_DATA_DIR);
  if (embedded) {
    config = {
      ...config,
      AWS_ENDPOINT_URL_DYNAMODB: config.AWS_ENDPOINT_URL_DYNAMODB ?? embedded.dynamodb,
      AWS_ENDPOINT_URL_SQS: config.AWS_ENDPOINT_URL_SQS ?? embedded.sqs,
    };
  }
  const services = await createServices(config, overrides);
  // Given a queue's URL, the services take the table as made (lib/core-services.ts); this
  // runtime stands in for the stack, so it makes sure.
  if (config.HOIST_QUEUE_URL) await ensureTable(services.dynamo, config.HOIST_TABLE);
  const { log } = services;
  for (const env of environments) await services.releases.putEnvironment(env);
  if (environments.length) log.info({ environments: environments.map((e) => e.name) }, "environments registered");
  if (config.HOIST_LOCAL_ROUTER_PORT !== undefined) {
    const router = await ensureLocalRouter(config.HOIST_LOCAL_ROUTER_DIR, config.HOIST_LOCAL_ROUTER_PORT);
    // An operator's own `local` (registered with the CLI or the API) is left as it is.
    const name = config.HOIST_LOCAL_ENVIRONMENT;
    if (!(await services.releases.getEnvironment(name)))
      await services.releases.putEnvironment(
        Environment.parse({ name, engine: { endpoint: config.DOCKER_HOST ?? LOCAL_ENGINE }, router: { admin: router.admin, backend: router.backend, map: router.map } }),
      );
    log.info({ environment: name, url: router.url }, "apps released to the local environment answer here");
  }

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: httpApp(services).fetch, port: config.HOIST_PORT, hostname: "127.0.0.1" }, () => resolve(s));
    s.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`port ${config.HOIST_PORT} is in use: set HOIST_PORT to a free port`, { cause: err }) : err),
    );
  }).catch(async (err: unknown) => {
    await embedded?.stop();
    throw err;
  });
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : config.HOIST_PORT}`;

  const workers = options.workers ?? true;
  const poller = workers
    ? startPoller({
        consumer: services.queue,
        onSend: (listener) => services.queue.onSend(listener),
        log,
        concurrency: config.HOIST_WORKER_CONCURRENCY,
        handle: (w) => handleWakeUp(services, w),
      })
    : undefined;
  const tick = workers
    ? setInterval(() => {
        reconcile(services.reconcile)
          .then((ids) => ids.length && log.info({ redriven: ids }, "reconciler re-drove runs and deliveries"))
          .catch((err: unknown) => log.warn({ err }, "reconcile failed"));
        watchEnvironments(services.watch, (line) => log.info(line))
          .then((envs) => envs.length && log.info({ environments: envs }, "routers brought in step with the engines"))
          .catch((err: unknown) => log.warn({ err }, "watching environments failed"));
      }, config.HOIST_RECONCILE_EVERY_MS)
    : undefined;
  // The local stand-in for the every-minute EventBridge rule of functions/cron.ts.
  const cron = workers
    ? setInterval(() => {
        fireSchedules(services.cron, services.clock.now())
          .then((fired) => fired.started.length && log.info({ started: fired.started.map((s) => s.runId) }, "scheduled runs started"))
          .catch((err: unknown) => log.warn({ err }, "firing schedules failed"));
      }, config.HOIST_CRON_EVERY_MS)
    : undefined;
  // `hoist invoke` runs a function against this runtime's table and queue: it finds them here.
  const found = runtimeFile(config.HOIST_DATA_DIR);
  await writeRuntimeFile(found, { url, dynamodb: config.AWS_ENDPOINT_URL_DYNAMODB!, sqs: config.AWS_ENDPOINT_URL_SQS ?? "", table: config.HOIST_TABLE, queueUrl: services.queue.url });
  log.info({ url, data: config.HOIST_DATA_DIR, embedded: Boolean(embedded) }, "hoist is running");

  return {
    url,
    services,
    stop: async () => {
      clearInterval(tick);
      clearInterval(cron);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await poller?.stop();
      await embedded?.stop();
      await rm(found, { force: true });
    },
  };
}
