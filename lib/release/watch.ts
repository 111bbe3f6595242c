import { randomUUID } from "node:crypto";
import type { Environment, EnvironmentStore } from "./environment.ts";
import { follow, servingBySet } from "./in-place.ts";
import type { ReleaseContext } from "./moves.ts";
import type { ReleaseStore } from "./records.ts";
import type { ReleaseSpec } from "./compose.ts";

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
 * Keeps the routers of Swarm environments in step with what Swarm runs between releases: Swarm
 * replaces a task that crashed or failed its health check with a new one, at a new address, which
 * no release put in the router. Runs on the reconciler's schedule; an environment a release holds
 * is skipped (the release keeps its router in step itself). On a single Docker host a container
 * restarts in place, so there is nothing to follow. Resolves to the environments it changed.
 */
export async function watchEnvironments(deps: WatchDeps, log: (line: string) => void): Promise<string[]> {
  const changed: string[] = [];
  for (const env of await deps.store.listEnvironments()) {
    if (env.mode !== "swarm") continue;
    // Its own owner per call: two overlapping ticks must exclude each other too.
    const owner = `${WATCH_OWNER}${randomUUID()}`;
    const now = deps.now();
    if (!(await deps.store.lock(env.name, owner, now + WATCH_LEASE_MS, now)).ok) continue;
    try {
      const current = (await deps.store.listReleases(env.name, 20)).find((r) => r.status === "succeeded");
      if (!current) continue;
      const ctx = deps.contextFor(env, (line) => log(`${env.name}: ${line}`));
      const groups = ctx.host.groups;
      if (!groups) continue;
      const health = (current.spec as ReleaseSpec).hoist.health;
      for (const [group, serving] of await servingBySet(groups, current.instances)) {
        // Nothing running at all is an outage to report, not a router to empty.
        if (serving.length === 0) log(`${env.name}: nothing of ${group} runs`);
        else if (!(await follow(ctx, health, group, serving))) changed.push(env.name);
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
