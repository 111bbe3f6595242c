import { BusyError, classify, isRetryable, messageOf } from "../errors.ts";
import { ulid } from "ulid";
import type { ReleaseSpec } from "./spec.ts";
import { moveFailure, ReleaseError, restore, retire } from "./moves.ts";
import { prepareApp, readSecretValues } from "./app-host.ts";
import { pruneCompanions, releaseCompanions, splitAround, swarmRefusal, undoCompanions, waitRoutedDependencies, type CompanionInstances } from "./app-release.ts";
import { ReleaseParked } from "./plan.ts";
import { pullFirst } from "./pull-first.ts";
import type { ReleaseContext } from "./ports.ts";
import type { Checkpoint, ReleaseRecord, ReleaseStore } from "./records.ts";
import { WATCH_OWNER } from "./watch.ts";
import { runStrategy, undoParked } from "./strategies.ts";

export interface ReleaseDeps {
  store: ReleaseStore;
  now: () => number;
  /** The longest a release may hold its environment's lease. */
  leaseMs: number;
}

export interface ReleaseRequest {
  /**
   * Names the release; give the same id again to resume one that a crash interrupted (its
   * instances are named by it, so starting them again is idempotent). Default: a new ULID.
   */
  id?: string;
  image: string;
  spec: ReleaseSpec;
  trigger: ReleaseRecord["trigger"];
  /**
   * A wait longer than this (a canary interval) parks the release instead: it resolves at once,
   * still `running`, with its `checkpoint`, keeping the environment's lease; the same request
   * after `checkpoint.until` carries on. Default: wait, however long.
   */
  parkAfterMs?: number;
}

/** A new release's id: a ULID, lower case (it names containers and Swarm services). */
export function newReleaseId(): string {
  return ulid().toLowerCase();
}

/** Another release holds the environment; nothing was changed. */
export class ReleaseBusyError extends BusyError {
  override name = "ReleaseBusyError";
}

/**
 * Releases `image` to the context's environment: takes the environment's lease (one
 * release at a time, never interleaved), records the release, runs its strategy against
 * what serves now and records the outcome. A failed health gate ends `failed` with the
 * previous release serving.
 */
export async function release(deps: ReleaseDeps, ctx: ReleaseContext, req: ReleaseRequest): Promise<ReleaseRecord> {
  const id = req.id ?? newReleaseId();
  // A release that ended (a worker died after recording it) is done: running it again would redo it.
  const ended = req.id === undefined ? undefined : await deps.store.getRelease(ctx.env, id);
  if (ended && ended.status !== "running" && ended.status !== "queued") return ended;
  const owner = `release ${id}`;
  const started = deps.now();
  // An environment whose engine or router does not answer (or has no such backend) fails the
  // release now, with the previous release untouched, rather than leaving the run waiting on
  // it; past this point an outage is retried, and the release resumes where it stopped.
  const unusable = (err: unknown): never => {
    // Permanent for the stage (fail now, untouched), but an outage still answers 503 to a request.
    throw new ReleaseError(`cannot release to ${ctx.env}: ${messageOf(err)}`, { cause: err, status: classify(err).status });
  };
  // Pulled first when the engine lacks it (a host that did not build it, a rollback to an image
  // removed since), before the lease: a pull changes nothing, and a long one must not use up the
  // time the lease gives the release. A registry that refuses, lacks it or stays down fails it here.
  if (req.spec.hoist.routes && !ctx.routesMap)
    throw new ReleaseError(`cannot release to ${ctx.env}: the app declares x-hoist.routes, and the environment's router has no routes map: register it with \`hoist env set ${ctx.env} --router-map FILE\``);
  const swarm = ctx.host.groups ? swarmRefusal(req.spec) : undefined;
  if (!ctx.host.groups) {
    const placed = [req.spec, ...(req.spec.app?.services ?? [])].filter((s) => s.runtime?.placement).map((s) => ("name" in s ? s.name : s.service));
    if (placed.length) ctx.log(`warning: deploy.placement of ${placed.join(", ")} applies on Swarm; ${ctx.env} is one Docker host, where everything runs`);
  }
  if (swarm) throw new ReleaseError(`cannot release to ${ctx.env}: ${swarm}`);
  for (const image of new Set([req.image, ...(req.spec.app?.services.map((s) => s.image) ?? [])])) await pullFirst(ctx, image).catch(unusable);
  // Read once, before anything changes: a secret whose variable is gone fails the release untouched.
  const secretValues = await readSecretValues(ctx, req.spec).catch(unusable);
  const lease = await takeLease(deps, ctx, owner);
  if (!lease.ok)
    throw new ReleaseBusyError(
      `environment ${ctx.env} is being released (${lease.holder}, lease until ${new Date(lease.until).toISOString()}): wait for it to finish, then try again`,
    );
  let parked = false;
  try {
    await ctx.router.servers(ctx.backend).catch(unusable);
    const history = await deps.store.listReleases(ctx.env);
    const current = history.find((r) => r.status === "succeeded" && r.id !== id);
    // A parked (or interrupted) release carries on from its record.
    const earlier = history.find((r) => r.id === id && r.status === "running");
    const record: ReleaseRecord = {
      env: ctx.env,
      id,
      image: req.image,
      service: req.spec.service,
      strategy: req.spec.hoist.strategy,
      trigger: req.trigger,
      status: "running",
      startedAt: earlier?.startedAt ?? started,
      instances: [],
      ...(current ? { previous: current.id } : {}),
      spec: req.spec,
      // Not the earlier checkpoint: once this call carries on, the release is no longer where
      // that says it parked (a cancel after a crash from here on must not undo it from there).
    };
    await deps.store.putRelease(record);
    ctx.log(
      `release ${id} of ${req.image} to ${ctx.env} (${record.strategy})${current ? `, replacing ${current.id}` : ""}${earlier?.checkpoint ? `: carrying on (${earlier.checkpoint.waiting})` : ""}`,
    );
    const checkpoint = async (at: Checkpoint) => {
      record.checkpoint = at;
      await deps.store.putRelease(record);
    };
    const previousCompanions: CompanionInstances = current?.companions ?? {};
    const previousSpec = current?.spec as ReleaseSpec | undefined;
    const previousApp = previousSpec?.app;
    const around = splitAround(req.spec);
    const companionPlan = { id, previous: { ...(previousApp ? { app: previousApp } : {}), instances: previousCompanions }, routed: req.spec.service, secretValues };
    let companions: CompanionInstances = {};
    const previousRoutes = previousSpec?.hoist.routes;
    const routesChange = ctx.routesMap !== undefined && (req.spec.hoist.routes !== undefined || previousRoutes !== undefined);
    let outcome: Awaited<ReturnType<typeof runStrategy>>;
    try {
      // The services the routed one needs (and the independent ones) first, in depends_on order.
      try {
        // Its hosts and paths lead to this environment's backend (an app that dropped routes takes them out).
        if (routesChange) await ctx.router.setRoutes(ctx.routesMap!, ctx.backend, req.spec.hoist.routes ?? []);
        await prepareApp(ctx, req.spec);
        companions = await releaseCompanions(ctx, { ...companionPlan, services: around.before, done: {} });
        await waitRoutedDependencies(ctx, { ...companionPlan, services: around.before, done: companions }, req.spec.app?.dependsOn ?? []);
      } catch (err) {
        const error = moveFailure(err);
        await undoCompanions(ctx, id, req.spec, previousCompanions);
        outcome = { ok: false, error, rolledBack: true, instances: current?.instances ?? [] };
        throw new AppFailed(outcome);
      }
      outcome = req.spec.unrouted ? { ok: true, instances: [] } : await runStrategy(ctx, {
        id,
        image: req.image,
        spec: req.spec,
        live: current?.instances ?? [],
        ...(secretValues ? { secretValues } : {}),
        startedAt: record.startedAt,
        checkpoint,
        ...(earlier?.checkpoint ? { resume: earlier.checkpoint } : {}),
        ...(req.parkAfterMs !== undefined ? { parkAfterMs: req.parkAfterMs } : {}),
      });
      if (!outcome.ok && outcome.rolledBack) await undoCompanions(ctx, id, req.spec, previousCompanions);
      if (outcome.ok && around.after.length) {
        try {
          companions = await releaseCompanions(ctx, { ...companionPlan, services: around.after, done: companions });
        } catch (err) {
          const error = moveFailure(err);
          // The routed service was switched already: its previous instances serve again.
          const live = current?.instances ?? [];
          await restore(ctx, { id, image: req.image, spec: req.spec, live }, live);
          await retire(ctx, outcome.instances, req.spec.hoist.drainMs);
          await undoCompanions(ctx, id, req.spec, previousCompanions);
          outcome = { ok: false, error, rolledBack: true, instances: live };
        }
      }
    } catch (err) {
      if (err instanceof AppFailed) outcome = err.outcome;
      else if (!(err instanceof ReleaseParked)) throw err;
      else {
        // Keep the environment until well after the wake-up, so no other release slips in.
        const now = deps.now();
        await deps.store.lock(ctx.env, owner, err.until + deps.leaseMs, now);
        parked = true;
        ctx.log(`release ${id} waits: ${err.message}`);
        return record;
      }
    }
    // A release that ends with the previous one serving puts its routes back too.
    if (!outcome.ok && outcome.rolledBack && routesChange) await ctx.router.setRoutes(ctx.routesMap!, ctx.backend, previousRoutes ?? []);
    const { checkpoint: _done, ...finished } = record;
    const digest = outcome.ok ? await digestServing(ctx, outcome.instances, req.image) : undefined;
    const done: ReleaseRecord = outcome.ok
      ? {
          ...finished,
          status: "succeeded",
          finishedAt: deps.now(),
          instances: outcome.instances,
          ...(digest ? { digest } : {}),
          ...(Object.keys(companions).length ? { companions } : {}),
        }
      : {
          ...finished,
          status: outcome.cancelled ? "cancelled" : "failed",
          finishedAt: deps.now(),
          error: outcome.error,
          rolledBack: outcome.rolledBack,
          instances: [],
          ...(outcome.canary ? { canary: outcome.canary } : {}),
        };
    await deps.store.putRelease(done);
    ctx.log(outcome.ok ? `release ${id} succeeded${digest ? `, running ${digest}` : ""}` : `release ${id} failed: ${outcome.error}`);
    if (outcome.ok) {
      await prune(ctx, req.spec.service, [id, ...(current ? [current.id] : [])]);
      if (Object.keys(companions).length || Object.keys(previousCompanions).length) await pruneCompanions(ctx, req.spec.service, companions, previousCompanions);
      // Releases that died part-way and were never resumed: what they left is pruned, so their
      // records end too, rather than read as under way for ever.
      for (const orphan of history.filter((r) => r.status === "running" && r.id !== id))
        await deps.store.putRelease({ ...orphan, status: "failed", finishedAt: deps.now(), error: `interrupted, and superseded by release ${id}`, instances: [] });
    }
    // A changed secret or config, or a release put back, leaves files no instance uses.
    await ctx.host.removeUnusedFiles?.(ctx.env);
    return done;
  } finally {
    if (!parked) await deps.store.unlock(ctx.env, owner);
  }
}

/**
 * Ends a release that its run no longer wants (the run was cancelled while the release waited
 * between steps, or while it was interrupted): the previous release serves alone again, the
 * record ends `cancelled` with `reason`, and the environment is free for the next release. A
 * release that has already ended, or never began, is left as it is. Safe to repeat.
 */
export async function abandon(deps: ReleaseDeps, ctx: ReleaseContext, id: string, reason: string): Promise<ReleaseRecord | undefined> {
  const owner = `release ${id}`;
  for (;;) {
    const record = await deps.store.getRelease(ctx.env, id);
    if (!record || record.status !== "running") return record;
    const spec = record.spec as ReleaseSpec;
    const at = record.checkpoint;
    if (!at) {
      // Interrupted mid-move (its worker died): carry the move on to its next wait, where it
      // can be undone from a checkpoint, or to its end.
      ctx.log(`release ${id} was interrupted: carrying it on to where it can stop`);
      const carried = await release(deps, ctx, { id, image: record.image, spec, trigger: record.trigger, parkAfterMs: 0 });
      if (carried.status !== "running") return carried;
      continue;
    }
    const lease = await takeLease(deps, ctx, owner);
    if (!lease.ok) throw new ReleaseBusyError(`environment ${ctx.env} is held by ${lease.holder}: release ${id} is undone once it is free`);
    try {
      const previous = record.previous ? await deps.store.getRelease(ctx.env, record.previous) : undefined;
      const undone = await undoParked(ctx, { id, image: record.image, spec, live: previous?.instances ?? [] }, at);
      await undoCompanions(ctx, id, spec, previous?.companions ?? {});
      const { checkpoint: _parked, ...rest } = record;
      const done: ReleaseRecord = { ...rest, status: "cancelled", finishedAt: deps.now(), error: `${reason} (${at.waiting}): ${undone}`, rolledBack: true };
      await deps.store.putRelease(done);
      ctx.log(`release ${id} cancelled: ${undone}`);
      return done;
    } finally {
      await deps.store.unlock(ctx.env, owner);
    }
  }
}

/** A companion service failed before the routed one's strategy began: the release ends with `outcome`. */
class AppFailed extends Error {
  constructor(readonly outcome: Extract<Awaited<ReturnType<typeof runStrategy>>, { ok: false }>) {
    super(outcome.error);
  }
}

/** How long a release waits out the environment's watch (which holds it for milliseconds) before giving up. */
const WATCH_PATIENCE_MS = 2_000;

/** The environment's release lease for `owner`, or who holds it. */
async function takeLease(deps: ReleaseDeps, ctx: ReleaseContext, owner: string): ReturnType<ReleaseStore["lock"]> {
  const giveUp = deps.now() + WATCH_PATIENCE_MS;
  for (;;) {
    const now = deps.now();
    const lease = await deps.store.lock(ctx.env, owner, now + deps.leaseMs, now);
    if (lease.ok || !lease.holder.startsWith(WATCH_OWNER) || now >= giveUp) return lease;
    await ctx.clock.sleep(50);
  }
}

/**
 * The release that undoes the current one: an earlier release's image and description, `to`, or
 * else the succeeded release before the current one. It switches blue-green, whatever strategy
 * that release used: undoing a release takes the seconds its instances need to start and pass
 * the health gate, not a canary's steps or a rolling update's batches.
 */
export async function rollbackRequest(store: ReleaseStore, env: string, by: string, to?: string): Promise<ReleaseRequest> {
  const history = await store.listReleases(env);
  const succeeded = history.filter((r) => r.status === "succeeded");
  const target = to ? history.find((r) => r.id === to) : succeeded[1];
  if (!target)
    throw new ReleaseError(
      to ? `environment ${env} has no release ${to}: see \`hoist releases ${env}\`` : `environment ${env} has no earlier successful release to roll back to`,
      { status: to ? 404 : 409 },
    );
  const spec = target.spec as ReleaseSpec;
  return {
    image: target.image,
    spec: { ...spec, hoist: { ...spec.hoist, strategy: "blue-green" } },
    trigger: { type: "rollback", by, rollbackOf: target.id },
  };
}

/** Rolls the context's environment back now (see rollbackRequest). */
export async function rollback(deps: ReleaseDeps, ctx: ReleaseContext, by: string, to?: string): Promise<ReleaseRecord> {
  return release(deps, ctx, await rollbackRequest(deps.store, ctx.env, by, to));
}

/**
 * Removes the instances of every release but `keep` (the new one and the one it replaced,
 * kept stopped for a rollback): old releases must not pile up on the host. A release that
 * failed part-way (an outage it was not resumed from) may have left some in the router: they
 * leave it first, so it never sends a request to a removed container.
 */
async function prune(ctx: ReleaseContext, service: string, keep: string[]): Promise<void> {
  const instances = await ctx.host.list({ "hoist.env": ctx.env, "hoist.service": service });
  const stale = instances.filter((i) => !keep.includes(i.labels["hoist.release"] ?? ""));
  if (stale.length === 0) return;
  ctx.log(`removing ${stale.length} instance(s) of older releases`);
  const routed = new Set((await ctx.router.servers(ctx.backend)).map((s) => s.name));
  for (const i of stale) if (routed.has(i.name)) await ctx.router.removeServer(ctx.backend, i.name);
  await Promise.all(stale.map((i) => ctx.host.remove(i.name)));
}

/**
 * The registry digest the release's instances run, as the engine reports it (not as the release
 * asked): the record shows what serves. Undefined for an image no registry holds. An outage is
 * thrown (the release resumes and looks again); an answer that makes no sense leaves it out
 * rather than failing a release that succeeded.
 */
async function digestServing(ctx: ReleaseContext, instances: string[], image: string): Promise<string | undefined> {
  const first = instances[0];
  if (!first) return undefined;
  try {
    return await ctx.host.runningDigest(first, image);
  } catch (err) {
    if (isRetryable(err)) throw err;
    ctx.log(`could not read the digest ${first} runs: ${messageOf(err)}`);
    return undefined;
  }
}
