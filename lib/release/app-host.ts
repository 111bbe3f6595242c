import type { NetworkAttachment, RuntimeSettings } from "../compose/app-spec.ts";
import type { ContainerRuntime, InstanceSpec } from "../engine/instances.ts";
import type { ReleaseContext } from "./ports.ts";
import type { ReleaseSpec } from "./spec.ts";

/** Where an app's parts live on its environment's host: the names of its networks and volumes there, and its services' settings in the host's terms. */

/** Docker's limit on a name is higher; Swarm's, for networks shared with it, is this. */
export const MAX_NAME = 63;

/** An app network's or volume's name on the host: `hoist-<env>-<name>`, one per environment. */
export function scopedName(env: string, name: string): string {
  return `hoist-${env}-${name}`.replace(/[^a-zA-Z0-9_.-]/g, "-").slice(0, MAX_NAME);
}

/** The networks and volumes the app uses, made unless they exist; volumes are never removed. */
export async function prepareApp(ctx: ReleaseContext, spec: ReleaseSpec): Promise<void> {
  const app = spec.app;
  if (!app) return;
  const labels = { "hoist.env": ctx.env };
  for (const n of app.networks) await ctx.host.ensureNetwork(scopedName(ctx.env, n), { ...labels, "hoist.network": n });
  for (const v of app.volumes) await ctx.host.ensureVolume(scopedName(ctx.env, v), { ...labels, "hoist.volume": v });
}

/** A service's networks in the host's terms: reached by its name and aliases on each. */
export function attachments(ctx: ReleaseContext, service: string, networks: NetworkAttachment[] | undefined): InstanceSpec["networks"] {
  return (networks ?? [{ network: "default", aliases: [] }]).map((n) => ({ name: scopedName(ctx.env, n.network), aliases: [service, ...n.aliases] }));
}

/** Compose's container settings in the host's terms: named volumes scoped to the environment. */
export function engineRuntime(ctx: ReleaseContext, runtime: RuntimeSettings): ContainerRuntime {
  const { labels: _labels, mounts, ...rest } = runtime;
  return {
    ...rest,
    mounts: mounts.map((m) => {
      if (m.type !== "volume") return m;
      const { hostName, ...mount } = m;
      return { ...mount, source: hostName ?? scopedName(ctx.env, m.source) };
    }),
  };
}

