import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Clock } from "../clock.ts";
import { quoted } from "../pipeline/names.ts";
import { RegistryHost, RegistryRegistration, registryFrom, type RegistryStore } from "../registry/registry.ts";
import { jsonBody, parse } from "./app.ts";

export interface RegistryApiOptions {
  store: RegistryStore;
  clock: Clock;
}

/**
 * GET /api/registries[/:host], PUT and DELETE /api/registries/:host. A registration's password
 * or token goes in with PUT and never comes out: every answer is the registration without it.
 */
export function registryRoutes(opts: RegistryApiOptions): Hono {
  const app = new Hono();
  const host = (raw: string) => {
    // A host no registry can have is answered without asking the table, as an unknown one.
    if (!RegistryHost.safeParse(raw).success) throw new HTTPException(404, { message: `no registry ${quoted(raw)}: hosts are given as image names give them, e.g. ghcr.io or 127.0.0.1:5001` });
    return raw;
  };

  app.get("/api/registries", async (c) => c.json({ registries: await opts.store.listRegistries() }));

  app.get("/api/registries/:host", async (c) => {
    const name = host(c.req.param("host"));
    const registry = await opts.store.getRegistry(name);
    if (!registry) throw new HTTPException(404, { message: `no registry ${name}: register it with PUT /api/registries/${name}` });
    return c.json(registry);
  });

  app.put("/api/registries/:host", async (c) => {
    const name = parse(RegistryHost, c.req.param("host"), "host");
    const made = registryFrom(name, parse(RegistryRegistration, await jsonBody(c), "body"), opts.clock.now());
    if ("error" in made) throw new HTTPException(400, { message: made.error });
    await opts.store.putRegistry(made.registry, made.secret);
    return c.json(made.registry);
  });

  app.delete("/api/registries/:host", async (c) => {
    const name = host(c.req.param("host"));
    if (!(await opts.store.deleteRegistry(name))) throw new HTTPException(404, { message: `no registry ${name}` });
    return c.json({ deleted: name });
  });
  return app;
}
