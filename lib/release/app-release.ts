import { isDeepStrictEqual } from "node:util";
import type { AppParts, AppService, Dependency } from "./app-spec.ts";
import type { Instance, InstanceSpec } from "../engine/instances.ts";
import { attachments, engineRuntime, secretFiles } from "./app-host.ts";
import { moveFailure, ReleaseError, serviceSetName } from "./moves.ts";
import type { ReleaseContext } from "./ports.ts";
import type { ReleaseSpec } from "./spec.ts";

/**
 * The services of a compose application released around its routed one (see AppParts): each
 * environment's app gets its own networks and volumes on the host; a changed worker is replaced
 * start-first, a changed stateful service (one with a named volume) is recreated stop-first, and
 * an unchanged one is left running. Instances are named by the release, so doing it again after
 * a crash starts what exists rather than making more; undoing it puts the previous instances back.
 */

/** Instances per service, as a release record keeps them for the next release to compare with. */
export type CompanionInstances = Record<string, string[]>;

/** Which companions start before the routed service (what it needs, and the independent ones) and which after (those that need it). */
export function splitAround(spec: ReleaseSpec): { before: AppService[]; after: AppService[] } {
  const services = spec.app?.services ?? [];
  const needsRouted = new Set<string>();
  for (const s of services) if (s.dependsOn.some((d) => d.service === spec.service || needsRouted.has(d.service))) needsRouted.add(s.name);
  return { before: services.filter((s) => !needsRouted.has(s.name)), after: services.filter((s) => needsRouted.has(s.name)) };
}

export interface CompanionPlan {
  id: string;
  /** The services to release now, in start order. */
  services: AppService[];
  /** The app as the serving release describes it, and its instances: what an unchanged service keeps. */
  previous: { app?: AppParts; instances: CompanionInstances };
  /** Instances of services released so far in this release, which later ones' depends_on conditions wait on. */
  done: CompanionInstances;
  /** The routed service's conditions are checked on its previous instances' successors by the strategy itself. */
  routed: string;
  /** The values the app's secrets read. */
  secretValues?: ReadonlyMap<string, string> | undefined;
}

/**
 * Releases `plan.services` in order; resolves to the instances each now runs. A service that
 * fails to start (or to become healthy where it has a health check) fails the release with a
 * message naming it, after its own previous instances run again; the caller undoes the rest.
 */
export async function releaseCompanions(ctx: ReleaseContext, plan: CompanionPlan): Promise<CompanionInstances> {
  const running: CompanionInstances = { ...plan.done };
  for (const service of plan.services) {
    for (const dep of service.dependsOn) await waitCondition(ctx, dep, running[dep.service] ?? [], plan);
    const before = plan.previous.app?.services.find((s) => s.name === service.name);
    const old = plan.previous.instances[service.name] ?? [];
    if (before && isDeepStrictEqual(before, service) && (await allPresent(ctx, old))) {
      ctx.log(`${service.name}: unchanged, left running (${old.join(", ")})`);
      running[service.name] = old;
      continue;
    }
    running[service.name] = service.kind === "stateful" ? await recreate(ctx, plan, service, old) : await replace(ctx, plan, service, old);
  }
  return running;
}

/** The routed service's depends_on, checked before its strategy starts any instance. */
export async function waitRoutedDependencies(ctx: ReleaseContext, plan: CompanionPlan, dependsOn: Dependency[]): Promise<void> {
  for (const dep of dependsOn) await waitCondition(ctx, dep, plan.done[dep.service] ?? [], plan);
}

/** Start-first: the new instances run (healthy, where they check) before the old ones stop. */
async function replace(ctx: ReleaseContext, plan: CompanionPlan, service: AppService, old: string[]): Promise<string[]> {
  ctx.log(`${service.name}: starting ${service.replicas} new instance(s) of ${service.image}, then stopping ${old.length || "no"} old one(s)`);
  const fresh = await startAll(ctx, plan, service);
  for (const name of old) await ctx.host.stop(name);
  return fresh;
}

/** Stop-first, one instance: its volume is never written by two containers at once. */
async function recreate(ctx: ReleaseContext, plan: CompanionPlan, service: AppService, old: string[]): Promise<string[]> {
  ctx.log(`${service.name}: changed; stopping ${old.join(", ") || "nothing"}, then starting its new instance (stop-first: it keeps a volume)`);
  for (const name of old) await ctx.host.stop(name);
  try {
    return await startAll(ctx, plan, service);
  } catch (err) {
    const error = moveFailure(err);
    for (const name of old) await restart(ctx, name);
    throw new ReleaseError(error, { cause: err });
  }
}

async function startAll(ctx: ReleaseContext, plan: CompanionPlan, service: AppService): Promise<string[]> {
  const set = serviceSetName(ctx.env, service.name, plan.id);
  const names = Array.from({ length: service.replicas }, (_, i) => ctx.host.instanceName(set, i));
  try {
    for (const name of names) {
      const instance = await ctx.host.start({ name, ...companionSettings(ctx, plan, service) });
      if (service.healthcheck && service.healthcheck.test[0] !== "NONE") await untilHealthy(ctx, instance, service);
    }
  } catch (err) {
    moveFailure(err);
    await Promise.all(names.map((n) => ctx.host.remove(n)));
    throw err;
  }
  ctx.log(`${service.name}: running ${names.join(", ")}`);
  return names;
}

function companionSettings(ctx: ReleaseContext, plan: CompanionPlan, service: AppService): Omit<InstanceSpec, "name"> {
  const id = plan.id;
  return {
    image: service.image,
    env: service.environment,
    ...(service.command ? { command: service.command } : {}),
    labels: { ...service.runtime.labels, "hoist.env": ctx.env, "hoist.service": service.name, "hoist.release": id },
    port: 0,
    ...(service.resources.cpus ? { cpus: service.resources.cpus } : {}),
    ...(service.resources.memoryBytes ? { memoryBytes: service.resources.memoryBytes } : {}),
    ...(service.healthcheck ? { healthcheck: service.healthcheck } : {}),
    networks: attachments(ctx, service.name, service.networks),
    runtime: engineRuntime(ctx, service.runtime),
    ...(service.secrets.length ? { files: secretFiles(service.secrets, plan.secretValues) } : {}),
  };
}

/** How long a container's own health check may take to pass: its start period and every retry, with room for a busy host. */
function healthDeadlineMs(service: AppService): number {
  const h = service.healthcheck!;
  return Math.min(15 * 60_000, h.startPeriodMs + (h.retries + 1) * (h.intervalMs + h.timeoutMs) + 30_000);
}

async function untilHealthy(ctx: ReleaseContext, instance: Instance, service: AppService): Promise<void> {
  const deadline = ctx.clock.now() + healthDeadlineMs(service);
  for (;;) {
    const now = await ctx.host.inspect(instance.name);
    if (now?.health === "healthy") return;
    if (!now || now.health === "unhealthy" || (!now.running && now.exitCode !== undefined))
      throw new ReleaseError(`${service.name}: ${instance.name} ${!now ? "is gone" : now.health === "unhealthy" ? "failed its health check" : `exited with code ${now.exitCode}`}; see \`${ctx.host.logsCommand(instance.name)}\``);
    if (ctx.clock.now() >= deadline) throw new ReleaseError(`${service.name}: ${instance.name} was not healthy in time; see \`${ctx.host.logsCommand(instance.name)}\``);
    await ctx.clock.sleep(250);
  }
}

/** Waits until `dep` is as its dependent asks: started (already so), healthy, or finished with code 0. */
async function waitCondition(ctx: ReleaseContext, dep: Dependency, instances: string[], plan: CompanionPlan): Promise<void> {
  if (dep.condition === "service_started" || instances.length === 0) return;
  const service = [...plan.services, ...(plan.previous.app?.services ?? [])].find((s) => s.name === dep.service);
  const deadline = ctx.clock.now() + (service?.healthcheck ? healthDeadlineMs(service) : 15 * 60_000);
  for (const name of instances) {
    for (;;) {
      const now = await ctx.host.inspect(name);
      if (!now) throw new ReleaseError(`${dep.service}: ${name} is gone, and others wait for it (${dep.condition})`);
      if (dep.condition === "service_healthy") {
        if (now.health === "healthy") break;
        if (now.health === undefined) throw new ReleaseError(`${dep.service} has no health check, and a service waits for it to be healthy: give ${dep.service} a healthcheck`);
        if (now.health === "unhealthy") throw new ReleaseError(`${dep.service} is unhealthy; see \`${ctx.host.logsCommand(name)}\``);
      } else if (now.exitCode !== undefined && !now.running) {
        if (now.exitCode === 0) break;
        throw new ReleaseError(`${dep.service} exited with code ${now.exitCode}, and a service waits for it to succeed; see \`${ctx.host.logsCommand(name)}\``);
      }
      if (ctx.clock.now() >= deadline) throw new ReleaseError(`${dep.service} did not become ${dep.condition === "service_healthy" ? "healthy" : "done"} in time`);
      await ctx.clock.sleep(250);
    }
  }
}

async function allPresent(ctx: ReleaseContext, names: string[]): Promise<boolean> {
  if (names.length === 0) return false;
  for (const name of names) if (!(await ctx.host.inspect(name))) return false;
  return true;
}

async function restart(ctx: ReleaseContext, name: string): Promise<void> {
  const known = await ctx.host.inspect(name);
  if (!known) return;
  await ctx.host.start({ name, image: known.image, env: {}, labels: known.labels, port: known.port });
}

/**
 * Puts back the previous instances of every companion this release replaced, last first: its
 * own instances (found by their labels, so this works after a crash too) are removed and the
 * previous ones started again, but for a one-off's: it ran to its end with the previous release,
 * and starting it would run that migration again. Services it left unchanged are not touched.
 */
export async function undoCompanions(ctx: ReleaseContext, id: string, spec: ReleaseSpec, previous: CompanionInstances): Promise<void> {
  const oneOffs = new Set(
    [...(spec.app?.dependsOn ?? []), ...(spec.app?.services.flatMap((s) => s.dependsOn) ?? [])].filter((d) => d.condition === "service_completed_successfully").map((d) => d.service),
  );
  for (const service of [...(spec.app?.services ?? [])].reverse()) {
    const fresh = await ctx.host.list({ "hoist.env": ctx.env, "hoist.service": service.name, "hoist.release": id });
    if (fresh.length === 0) continue;
    ctx.log(`${service.name}: back to ${previous[service.name]?.join(", ") || "nothing (it is new)"}`);
    for (const i of fresh) await ctx.host.remove(i.name);
    if (!oneOffs.has(service.name)) for (const name of previous[service.name] ?? []) await restart(ctx, name);
  }
}

/**
 * After a release succeeded: instances of services the app no longer has are stopped (kept for
 * a rollback), and every companion instance that neither this release nor the one it replaced
 * runs is removed.
 */
export async function pruneCompanions(ctx: ReleaseContext, routed: string, now: CompanionInstances, previous: CompanionInstances): Promise<void> {
  // On a host that runs instances as sets (Swarm services), a set is kept or removed whole.
  const unit = (name: string) => ctx.host.groups?.groupOf(name) ?? name;
  const running = new Set(Object.values(now).flat().map(unit));
  const keep = new Set([...running, ...Object.values(previous).flat().map(unit)]);
  const all = await ctx.host.list({ "hoist.env": ctx.env });
  for (const i of all) {
    const service = i.labels["hoist.service"];
    if (service === undefined || service === routed || running.has(unit(i.name))) continue;
    if (!keep.has(unit(i.name))) await ctx.host.remove(i.name);
    else if (!Object.hasOwn(now, service) && i.running) await ctx.host.stop(i.name);
  }
}

/** Why `spec` can't be released to a Swarm host, or undefined: Swarm runs no privileged task. */
export function swarmRefusal(spec: ReleaseSpec): string | undefined {
  const privileged = [spec.service, ...(spec.app?.services.map((s) => s.name) ?? [])].filter((name) =>
    name === spec.service ? spec.runtime?.privileged : spec.app?.services.find((s) => s.name === name)?.runtime.privileged,
  );
  return privileged.length ? `Swarm runs no privileged task, and ${privileged.join(", ")} asks for privileged: use cap_add for what it needs, or a Docker host` : undefined;
}
