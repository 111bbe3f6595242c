import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import * as z from "zod";
import { EnvironmentName, quoted } from "../pipeline/names.ts";
import { Environment, type EnvironmentStore } from "../release/environment.ts";
import type { Clock } from "../clock.ts";
import type { Queue } from "../queue/port.ts";
import type { ReleaseStore } from "../release/records.ts";
import { requestRollback } from "../runs/queued-release.ts";
import { jsonBody, parse } from "./app.ts";

export interface EnvironmentApiOptions {
  store: ReleaseStore & EnvironmentStore;
  /** Wakes a worker for a queued rollback. */
  queue: Pick<Queue, "send">;
  clock: Clock;
}

const RollbackBody = z.object({ to: z.string().min(1).max(100).optional() }).strict();

/**
 * GET/PUT /api/environments[/:name], GET /api/environments/:name/releases and
 * POST /api/environments/:name/rollback (queues an earlier release's image as a new release
 * and answers 202 with it; a worker runs it).
 */
export function environmentRoutes(opts: EnvironmentApiOptions): Hono {
  const app = new Hono();
  const known = async (name: string) => {
    // A name no environment can have is answered without asking the table, like an unknown one.
    if (!EnvironmentName.safeParse(name).success)
      throw new HTTPException(404, { message: `no environment ${quoted(name)}: names are lower-case letters, digits and -, at most 40` });
    const env = await opts.store.getEnvironment(name);
    if (!env) throw new HTTPException(404, { message: `no environment ${name}: register it with PUT /api/environments/${name}` });
    return env;
  };

  app.get("/api/environments", async (c) => c.json({ environments: await opts.store.listEnvironments() }));
  app.get("/api/environments/:name", async (c) => c.json(await known(c.req.param("name"))));

  app.put("/api/environments/:name", async (c) => {
    const body = await jsonBody(c);
    const env = parse(Environment, { ...(body && typeof body === "object" ? body : {}), name: c.req.param("name") }, "body");
    await opts.store.putEnvironment(env);
    return c.json(env);
  });

  app.get("/api/environments/:name/releases", async (c) => {
    const env = await known(c.req.param("name"));
    return c.json({ releases: await opts.store.listReleases(env.name) });
  });

  app.post("/api/environments/:name/rollback", async (c) => {
    const env = await known(c.req.param("name"));
    const body = parse(RollbackBody, await jsonBody(c, true), "body");
    // A release takes as long as its instances need: the request only queues it (202, its id);
    // follow it in GET /api/environments/:name/releases. An unknown target is a 404, none a 409.
    const record = await requestRollback({ store: opts.store, queue: opts.queue, clock: opts.clock }, env.name, "the API", body.to);
    return c.json({ release: record }, 202);
  });
  return app;
}
