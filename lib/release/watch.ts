import { randomUUID } from "node:crypto";
import type { Environment, EnvironmentStore } from "./environment.ts";
import type { Instance } from "../engine/instances.ts";
import type { ReleaseContext } from "./ports.ts";
import { inSet, servingBySet, syncRouter } from "./router-sync.ts";
import type { ReleaseStore } from "./records.ts";
import type { ReleaseSpec } from "./spec.ts";

export interface WatchDeps {
  store: ReleaseStore & EnvironmentStore;
  now: () => number;
  contextFor: (env: Environment, log: (line: string) => void) => ReleaseContext;
}

/** How the watch's leases are named: a release waits a watch out instead of giving up. */
export const WATCH_OWNER = "watch ";

/** How long one look at an environment may hold it; it takes milliseconds. */
const WATCH_LEASE_MS = 60_000;

/**
 * Keeps each environment's router in step with what its engine runs between releases. Swarm
 * replaces a task that crashed or failed its health check with a new one, at a new address, which
 * no release put in the router. On a Docker host a crashed container restarts in place (restart
 * policy unless-stopped), possibly at a new address, and one stopped by hand serves nothing. Runs
 * on the reconciler's schedule; an environment a release holds is skipped (the release keeps its
 * router in step itself). Resolves to the environments it changed.
 */
export async function watchEnvironments(deps: WatchDeps, log: (line: string) => void): Promise<string[]> {
  const changed: string[] = [];
  for (const env of await deps.store.listEnvironments()) {
    // Its own owner per call: two overlapping ticks must exclude each other too.
    const owner = `${WATCH_OWNER}${randomUUID()}`;
    const now = deps.now();
    if (!(await deps.store.lock(env.name, owner, now + WATCH_LEASE_MS, now)).ok) continue;
    try {
      const current = (await deps.store.listReleases(env.name, 20)).find((r) => r.status === "succeeded");
      if (!current) continue;
      const ctx = deps.contextFor(env, (line) => log(`${env.name}: ${line}`));
      // One probe per instance and look: a release waits out the watch for seconds, not the
      // health gate's whole patience; one that is not healthy yet is looked at next time.
      const health = { ...(current.spec as ReleaseSpec).hoist.health, retries: 0 };
      for (const [set, serving, ours] of await sets(ctx, current.instances)) {
        // Nothing running at all is an outage to report, not a router to empty.
        if (serving.length === 0) log(`${env.name}: nothing of ${set} runs`);
        else if (!(await syncRouter(ctx, health, ours, serving))) changed.push(env.name);
      }
    } catch (err) {
      // One environment's engine or router failing must not keep the others from being watched.
      log(`${env.name}: ${(err as Error).message}`);
    } finally {
      await deps.store.unlock(env.name, owner);
    }
  }
  return [...new Set(changed)];
}

/** The release's sets as the host runs them now: name, serving instances, and which router servers are theirs. */
async function sets(ctx: ReleaseContext, instances: string[]): Promise<[string, Instance[], (server: string) => boolean][]> {
  const groups = ctx.host.groups;
  if (groups) return [...(await servingBySet(groups, instances))].map(([group, serving]) => [group, serving, inSet(group)]);
  const running = (await Promise.all(instances.map((name) => ctx.host.inspect(name)))).filter((i): i is Instance => i?.running === true);
  return [[instances.join(", "), running, (server) => instances.includes(server)]];
}
