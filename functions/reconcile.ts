// Scheduled (every minute on AWS): re-drives runs whose message was lost or whose worker died.
import { loadConfig } from "../lib/config.ts";
import { reconcile } from "../lib/runs/reconcile.ts";
import { createServices } from "../lib/services.ts";

const services = await createServices(loadConfig(process.env));

export const handler = async () => ({ redriven: await reconcile(services.reconcile) });
