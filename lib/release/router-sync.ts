import type { Instance, InstanceGroups } from "../engine/instances.ts";
import { waitHealthy } from "./health.ts";
import { enroll, FULL } from "./moves.ts";
import type { HttpHealth, ReleaseContext } from "./ports.ts";

/**
 * Keeping the router in step with what a host runs by itself: Swarm replaces tasks (a rolling
 * update, a crash) and a Docker host restarts a container, each possibly at a new address, with
 * no release putting them in the router. A Swarm rolling release, a strategy starting from a
 * grouped host's sets and the reconciler's watch all sync the router this way.
 */

/**
 * The serving instances of each set that `instances` belong to, as the host runs them now
 * (Swarm replaces crashed tasks and rolls failed updates back without a release); a set the
 * host no longer has serves none.
 */
export async function servingBySet(groups: InstanceGroups, instances: readonly string[]): Promise<Map<string, Instance[]>> {
  const sets = new Map<string, Instance[]>();
  for (const group of new Set(instances.map((name) => groups.groupOf(name)))) sets.set(group, (await groups.progress(group))?.serving ?? []);
  return sets;
}

/** The router's servers that belong to a set: its instances are named `<set>.<slot>...`. */
export const inSet = (group: string) => (server: string) => server.startsWith(`${group}.`);

/**
 * Puts the router in step with the instances that serve (of those `ours` picks out): one that is
 * new, back at another address, or not enabled yet, joins at full weight once it passes the HTTP
 * health gate; one no longer serving leaves (no new requests, the ones in flight finish). Resolves true when
 * nothing needed changing.
 */
export async function syncRouter(ctx: ReleaseContext, health: HttpHealth, ours: (server: string) => boolean, serving: Instance[]): Promise<boolean> {
  const servers = (await ctx.router.servers(ctx.backend)).filter((s) => ours(s.name));
  let inStep = true;
  for (const instance of serving) {
    const known = servers.find((s) => s.name === instance.name);
    const here = known !== undefined && known.address === instance.address && known.port === instance.port;
    // Not ready where it is: a sync that stopped (a crash) between adding it and enabling it.
    if (here && known.state === "ready") continue;
    inStep = false;
    // Back at another address (a restart on a new IP): the old one serves nothing.
    if (known && !here) await ctx.router.removeServer(ctx.backend, known.name);
    const unhealthy = await waitHealthy(ctx, instance, health);
    if (unhealthy) ctx.log(`${instance.name} is running but failed its health check: ${unhealthy}`);
    else await enroll(ctx, [instance], FULL);
  }
  for (const server of servers) {
    if (serving.some((i) => i.name === server.name)) continue;
    inStep = false;
    await ctx.router.removeServer(ctx.backend, server.name);
  }
  return inStep;
}
