// Scheduled (every minute on AWS): re-drives runs whose message was lost or whose worker died,
// and brings environments' routers in step with what their engines run.
import { loadFunctionConfig } from "../lib/aws/secrets.ts";
import { watchEnvironments } from "../lib/release/watch.ts";
import { reconcile } from "../lib/runs/reconcile.ts";
import { createServices } from "../lib/services.ts";

const services = await createServices(await loadFunctionConfig());

export const handler = async () => ({
  redriven: await reconcile(services.reconcile),
  routersChanged: await watchEnvironments(services.watch, (line) => services.log.info(line)),
});
