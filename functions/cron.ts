// Scheduled (every minute on AWS, an EventBridge rule): fires each due `on.schedule` slot once.
import * as z from "zod";
import { loadFunctionConfig } from "../lib/aws/secrets.ts";
import { fireSchedules, type CronDeps, type FireSummary } from "../lib/runs/cron.ts";
import { createServices, type Services } from "../lib/services.ts";

/** The part of EventBridge's scheduled event read: its id, which names the tick in the logs. */
const ScheduledEvent = z.object({ id: z.string().max(128) }).partial();

/** Runtime-neutral: one tick, whatever invoked it (EventBridge, the local runtime's timer, a test). */
export async function tick(deps: CronDeps, event: unknown): Promise<FireSummary> {
  const id = ScheduledEvent.safeParse(event).data?.id;
  return fireSchedules(id ? { ...deps, log: deps.log.child({ tick: id }) } : deps, deps.clock.now());
}

// Built on the first tick rather than at import, so importing `tick` wires nothing.
let services: Promise<Services> | undefined;

/** The Lambda export for an EventBridge `Scheduled Event`. */
export const handler = async (event: unknown): Promise<FireSummary> => tick((await (services ??= loadFunctionConfig().then((config) => createServices(config)))).cron, event);
