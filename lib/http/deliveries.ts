import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { DeliveryStore } from "../store/deliveries.ts";
import type { RunStore } from "../store/port.ts";

export interface DeliveryApiOptions {
  deliveries: DeliveryStore;
  store: Pick<RunStore, "getRun">;
}

/** Hoist's delivery ids: `d` and 24 characters of Crockford base32 (lib/runs/ids.ts). */
const DELIVERY_ID = /^d[0-9a-z]{24}$/;

/**
 * GET /api/deliveries/:id: a push delivery's progress, from the webhook's record to its runs
 * (the webhook answers with this id before any run exists). Mounted behind the API's token.
 */
export function deliveryRoutes(opts: DeliveryApiOptions): Hono {
  const app = new Hono();
  app.get("/api/deliveries/:id", async (c) => {
    const id = c.req.param("id");
    const stored = DELIVERY_ID.test(id) ? await opts.deliveries.getDelivery(id) : undefined;
    if (!stored) throw new HTTPException(404, { message: `no delivery ${id.slice(0, 64)}: ids are as the webhook answered them (d + 24 characters)` });
    const { delivery } = stored;
    // The runs as they are now, not as they were made.
    const runs = delivery.runs
      ? await Promise.all(delivery.runs.map(async (r) => ({ ...r, status: (await opts.store.getRun(r.id))?.run.status ?? r.status })))
      : undefined;
    return c.json({ ...delivery, ...(runs ? { runs } : {}) });
  });
  return app;
}
