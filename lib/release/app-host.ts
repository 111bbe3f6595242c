import type { NetworkAttachment, RuntimeSettings } from "./app-spec.ts";
import type { ContainerRuntime, InstanceFile, InstanceSpec } from "../engine/instances.ts";
import type { SecretMount } from "./app-spec.ts";
import { NotFoundError } from "../errors.ts";
import type { ReleaseContext } from "./ports.ts";
import type { ReleaseSpec } from "./spec.ts";

/** Where an app's parts live on its environment's host: the names of its networks and volumes there, and its services' settings in the host's terms. */

/** Docker's limit on a name is higher; Swarm's, for networks shared with it, is this. */
const MAX_NAME = 63;

/** An app network's or volume's name on the host: `hoist-<env>-<name>`, one per environment. */
export function scopedName(env: string, name: string): string {
  return `hoist-${env}-${name}`.replace(/[^a-zA-Z0-9_.-]/g, "-").slice(0, MAX_NAME);
}

/** The networks and volumes the app uses, made unless they exist; volumes are never removed. */
export async function prepareApp(ctx: ReleaseContext, spec: ReleaseSpec): Promise<void> {
  const app = spec.app;
  if (!app || !joinsNetworks(ctx, spec)) return;
  const labels = { "hoist.env": ctx.env };
  for (const n of app.networks) await ctx.host.ensureNetwork(scopedName(ctx.env, n), { ...labels, "hoist.network": n });
  if (ctx.host.groups) await ctx.host.ensureNetwork(edgeNetwork(ctx), { ...labels, "hoist.network": "(edge)" }, true);
  for (const v of app.volumes) await ctx.host.ensureVolume(scopedName(ctx.env, v), { ...labels, "hoist.volume": v });
}

/**
 * Whether the app's services join its networks. On Swarm a lone service with no network of its
 * own runs on the node's default bridge instead: an overlay there has no one to reach, and
 * attaching one costs each task seconds.
 */
export function joinsNetworks(ctx: ReleaseContext, spec: ReleaseSpec): boolean {
  if (!spec.app) return false;
  if (!ctx.host.groups) return true;
  return spec.app.services.length > 0 || (spec.networks ?? []).some((n) => n.network !== "default" || n.aliases.length > 0);
}

/**
 * Where the router reaches routed instances on Swarm: a swarm-scoped bridge (an overlay's
 * addresses are not routed to from the node). Named apart from any compose network's.
 */
function edgeNetwork(ctx: ReleaseContext): string {
  return `${scopedName(ctx.env, "")}-edge`;
}

/**
 * A service's networks in the host's terms: reached by its name and aliases on each. A routed
 * service on Swarm joins the edge network first, where the router reaches it.
 */
export function attachments(ctx: ReleaseContext, service: string, networks: NetworkAttachment[] | undefined, routed = false): InstanceSpec["networks"] {
  const app = (networks ?? [{ network: "default", aliases: [] }]).map((n) => ({ name: scopedName(ctx.env, n.network), aliases: [service, ...n.aliases] }));
  return routed && ctx.host.groups ? [{ name: edgeNetwork(ctx), aliases: [] }, ...app] : app;
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


/** A service's secrets and configs as files, from the values the release read when it began. */
export function secretFiles(secrets: SecretMount[] | undefined, values: ReadonlyMap<string, string> | undefined): InstanceFile[] {
  return (secrets ?? []).map((s) => {
    const content = "content" in s ? s.content : values?.get(s.variable);
    if (content === undefined) throw new NotFoundError(`the ${s.kind ?? "secret"} ${s.name} reads the variable ${"variable" in s ? s.variable : ""}, which this environment no longer has: set it again (\`hoist env vars set\`)`);
    return { path: s.target, content, mode: s.mode, uid: s.uid, gid: s.gid };
  });
}

/** The variables every secret and config of the app reads, with their values, read once when the release begins. */
export async function readSecretValues(ctx: ReleaseContext, spec: ReleaseSpec): Promise<ReadonlyMap<string, string> | undefined> {
  const wanted = [...(spec.secrets ?? []), ...(spec.app?.services.flatMap((s) => s.secrets) ?? [])].flatMap((s) => ("variable" in s ? [s] : []));
  if (wanted.length === 0) return undefined;
  if (!ctx.variables) throw new NotFoundError(`the app reads variables (${wanted.map((s) => s.name).join(", ")}), and this server keeps none for ${ctx.env}`);
  const values = await ctx.variables();
  const missing = wanted.find((s) => !values.has(s.variable));
  if (missing) throw new NotFoundError(`the ${missing.kind ?? "secret"} ${missing.name} reads the variable ${missing.variable}, which ${ctx.env} no longer has: set it again (\`hoist env vars set ${ctx.env} ${missing.variable} --secret --value-stdin\`)`);
  return values;
}
