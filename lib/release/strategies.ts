import type { Instance, InstanceGroups } from "../engine/instances.ts";
import type { ServerStats } from "../router/port.ts";
import { rollInPlace } from "./in-place.ts";
import { enroll, FULL, launch, moveFailure, restore, retire, waitUntil } from "./moves.ts";
import type { CanaryVerdict, ReleaseOutcome, ReleasePlan } from "./plan.ts";
import type { ReleaseContext } from "./ports.ts";
import type { Checkpoint } from "./records.ts";
import { inSet, servingBySet, syncRouter } from "./router-sync.ts";

/** Runs the plan's strategy. A failed health gate leaves (or puts back) the previous release serving. */
export async function runStrategy(ctx: ReleaseContext, plan: ReleasePlan): Promise<ReleaseOutcome> {
  const groups = ctx.host.groups;
  if (groups) plan = { ...plan, live: await servingNow(ctx, plan, groups) };
  switch (plan.spec.hoist.strategy) {
    case "blue-green":
      return blueGreen(ctx, plan);
    case "canary":
      return canary(ctx, plan);
    case "rolling":
      return rolling(ctx, plan);
  }
}

/**
 * Asks whether the release is still wanted; when its run was cancelled, says so (`where` it
 * stopped), undoes what the strategy did so far and gives the outcome: `serving`, the previous
 * release, serves (again).
 */
async function unlessStopped(ctx: ReleaseContext, where: string, undo: () => Promise<unknown>, serving: () => string[]): Promise<ReleaseOutcome | undefined> {
  const reason = await ctx.stopped?.();
  if (reason === undefined) return undefined;
  ctx.log(`${where}: ${reason}`);
  await undo();
  return { ok: false, cancelled: true, error: reason, rolledBack: true, instances: serving() };
}

/** The whole new set starts and passes its health gate, then the weights switch at once. */
async function blueGreen(ctx: ReleaseContext, plan: ReleasePlan): Promise<ReleaseOutcome> {
  let fresh: Instance[];
  try {
    fresh = await launch(ctx, plan, 0, plan.spec.replicas);
  } catch (err) {
    return { ok: false, error: moveFailure(err), rolledBack: true, instances: plan.live };
  }
  const halted = await unlessStopped(ctx, "stopped before the switch", () => Promise.all(fresh.map((i) => ctx.host.remove(i.name))), () => plan.live);
  if (halted) return halted;
  await enroll(ctx, fresh, 0);
  ctx.log(`switching ${ctx.backend} to ${plan.image}`);
  for (const i of fresh) await ctx.router.setWeight(ctx.backend, i.name, FULL);
  for (const name of plan.live) await ctx.router.setWeight(ctx.backend, name, 0);
  await retire(ctx, plan.live, plan.spec.hoist.drainMs);
  return { ok: true, instances: fresh.map((i) => i.name) };
}

/**
 * What serves on a grouped host now: the previous release's record may name instances that are
 * gone (see servingBySet). The router is brought in step with the sets first.
 */
async function servingNow(ctx: ReleaseContext, plan: ReleasePlan, groups: InstanceGroups): Promise<string[]> {
  const live: string[] = [];
  for (const [group, serving] of await servingBySet(groups, plan.live)) {
    await syncRouter(ctx, plan.spec.hoist.health, inSet(group), serving);
    live.push(...serving.map((i) => i.name));
  }
  return live;
}

/** Batches of `parallelism`, each health-gated; `order` says whether new starts before old stops. */
async function rolling(ctx: ReleaseContext, plan: ReleasePlan): Promise<ReleaseOutcome> {
  const groups = ctx.host.groups;
  if (groups && plan.live.length) {
    if (new Set(plan.live.map((name) => groups.groupOf(name))).size === 1) return rollInPlace(ctx, plan, groups);
    // Stopping part of a set is not possible there; several sets are replaced whole.
    ctx.log("the previous release runs as several sets: replacing them blue-green");
    return blueGreen(ctx, plan);
  }
  const { parallelism, order, failureAction, delayMs } = plan.spec.update;
  const old = [...plan.live];
  const retired: string[] = [];
  const fresh: string[] = [];
  /** Old instances left serving in place of new ones that failed (failure_action: continue). */
  const kept: string[] = [];
  const failures: string[] = [];
  const batch = Math.max(1, parallelism || plan.spec.replicas);
  /** Back to the previous release: the new instances out, the stopped old ones restored. */
  const undo = async () => {
    await retire(ctx, fresh, plan.spec.hoist.drainMs);
    await Promise.all(fresh.map((n) => ctx.host.remove(n)));
    await restore(ctx, plan, retired);
  };
  for (let next = 0; next < plan.spec.replicas; next += batch) {
    const halted = await unlessStopped(ctx, `stopped after ${fresh.length} new instance(s)`, undo, () => [...retired, ...kept, ...old]);
    if (halted) return halted;
    const size = Math.min(batch, plan.spec.replicas - next);
    const leaving = old.splice(0, size);
    if (order === "stop-first") {
      await retire(ctx, leaving, plan.spec.hoist.drainMs);
      retired.push(...leaving);
    }
    try {
      const started = await launch(ctx, plan, next, next + size);
      await enroll(ctx, started, FULL);
      fresh.push(...started.map((i) => i.name));
    } catch (err) {
      const error = moveFailure(err);
      if (failureAction === "continue") {
        ctx.log(`${error}; continuing (failure_action: continue)`);
        failures.push(error);
        if (order === "start-first") kept.push(...leaving);
        continue;
      }
      if (order === "start-first") old.unshift(...leaving);
      if (failureAction === "pause") return { ok: false, error: `${error}; paused with ${fresh.length} new instance(s) serving`, rolledBack: false, instances: [...fresh, ...old] };
      await undo();
      return { ok: false, error, rolledBack: true, instances: [...retired, ...old] };
    }
    if (order === "start-first") {
      await retire(ctx, leaving, plan.spec.hoist.drainMs);
      retired.push(...leaving);
    }
    if (next + batch < plan.spec.replicas && delayMs > 0) await ctx.clock.sleep(delayMs);
  }
  await retire(ctx, old, plan.spec.hoist.drainMs); // the previous release had more replicas
  if (fresh.length === 0)
    return { ok: false, error: `no new instance became healthy: ${failures[0] ?? "unknown"}`, rolledBack: false, instances: kept };
  if (failures.length) ctx.log(`${failures.length} batch(es) failed and were skipped; ${kept.length} previous instance(s) still serve`);
  return { ok: true, instances: [...fresh, ...kept] };
}

/**
 * The canary set takes `step` percent of the traffic, step after step, growing with it (like
 * Argo Rollouts: `ceil(step% x replicas)` instances, at least one), so it has the capacity for
 * its share. After each interval its 5xx ratio (from the router's counters) is compared with
 * the stable set's; worse by more than the threshold, and it is taken out with the stable
 * weights restored. Then the rest of the new set starts and the stable set is let go.
 */
async function canary(ctx: ReleaseContext, plan: ReleasePlan): Promise<ReleaseOutcome> {
  const stable = plan.live;
  const { replicas, hoist } = plan.spec;
  const canaries: Instance[] = [];
  /** Grows the canary set to `count` instances, in the router at weight 0. */
  const grow = async (count: number) => {
    if (count <= canaries.length) return;
    const started = await launch(ctx, plan, canaries.length, count);
    await enroll(ctx, started, 0);
    canaries.push(...started);
  };
  const withdraw = (drainMs: number) => withdrawCanaries(ctx, stable, canaries.map((i) => i.name), drainMs);
  const failed = async (err: unknown, drainMs: number): Promise<ReleaseOutcome> => {
    const error = moveFailure(err);
    await withdraw(drainMs);
    return { ok: false, error, rolledBack: true, instances: stable };
  };
  /** Before each move that gives the canary more traffic: a cancelled run's canary is withdrawn. */
  const stop = () => unlessStopped(ctx, "canary stopped", () => withdraw(hoist.drainMs), () => stable);
  for (const step of hoist.steps.filter((s) => s < 100)) {
    if (stable.length === 0) break; // nothing to compare with: a first release goes straight to full
    // A resumed release skips the steps it passed; the step it parked in has its weights set.
    const resumed = plan.resume?.canary;
    if (resumed && step < resumed.step) continue;
    const halted = resumed?.step === step ? undefined : await stop();
    if (halted) return halted;
    try {
      await grow(canarySize(step, replicas));
    } catch (err) {
      return failed(err, 0); // the new instances never took traffic
    }
    let mark = resumed?.step === step ? { until: plan.resume!.until, before: resumed.before } : undefined;
    if (!mark) {
      const weights = canaryWeights(step, stable.length, canaries.length);
      ctx.log(`canary at ${step}%: ${canaries.length} new instance(s) next to ${stable.length}`);
      const before = await ctx.router.stats(ctx.backend);
      for (const i of canaries) await ctx.router.setWeight(ctx.backend, i.name, weights.canary);
      for (const name of stable) await ctx.router.setWeight(ctx.backend, name, weights.stable);
      mark = { until: ctx.clock.now() + hoist.intervalMs, before };
      await plan.checkpoint?.({ until: mark.until, waiting: `canary at ${step}%`, canary: { step, before } });
    }
    await waitUntil(ctx, plan, mark.until, `canary at ${step}%`);
    const verdict = compare(
      step,
      mark.before,
      await ctx.router.stats(ctx.backend),
      canaries.map((i) => i.name),
      stable,
    );
    if (ratio(verdict.canary) - ratio(verdict.stable) > hoist.errorThreshold) {
      ctx.log(`canary aborted at ${step}%: ${verdict.canary.errors} of ${verdict.canary.responses} canary responses were 5xx`);
      await withdraw(0);
      return {
        ok: false,
        error: `canary failed at ${step}%: ${verdict.canary.errors} of ${verdict.canary.responses} responses were 5xx (stable: ${verdict.stable.errors} of ${verdict.stable.responses})`,
        rolledBack: true,
        instances: stable,
        canary: verdict,
      };
    }
  }
  try {
    await grow(replicas);
  } catch (err) {
    return failed(err, hoist.drainMs);
  }
  const halted = await stop();
  if (halted) return halted;
  for (const i of canaries) await ctx.router.setWeight(ctx.backend, i.name, FULL);
  await retire(ctx, stable, hoist.drainMs);
  return { ok: true, instances: canaries.map((i) => i.name) };
}

/** Stable weights back to full, the canaries drained (after `drainMs`) and removed. */
async function withdrawCanaries(ctx: ReleaseContext, stable: string[], canaries: string[], drainMs: number): Promise<void> {
  for (const name of stable) await ctx.router.setWeight(ctx.backend, name, FULL);
  await retire(ctx, canaries, drainMs);
  for (const name of canaries) await ctx.host.remove(name);
}

/**
 * Undoes a release parked at `at` (its run was cancelled): the previous release serves alone
 * again. A canary is withdrawn; a host's own rolling update is rolled back by the host (the
 * reconciler's watch keeps the router in step while it does). Says what it did.
 */
export async function undoParked(ctx: ReleaseContext, plan: ReleasePlan, at: Checkpoint): Promise<string> {
  const groups = ctx.host.groups;
  if (at.canary) {
    const stable = groups ? await servingNow(ctx, plan, groups) : plan.live;
    const canaries = (await ctx.host.list({ "hoist.env": ctx.env, "hoist.release": plan.id })).map((i) => i.name);
    await withdrawCanaries(ctx, stable, canaries, plan.spec.hoist.drainMs);
    return `canary withdrawn at ${at.canary.step}%`;
  }
  // The set as the previous release recorded it: mid-update, none of its tasks may serve.
  const group = groups && plan.live[0] !== undefined ? groups.groupOf(plan.live[0]) : undefined;
  if (!groups || !group) return "nothing was under way";
  await groups.revert(group, plan.id);
  return `${group} rolled back by the host`;
}

/** How many new instances carry a canary step: its share of the replicas, at least one. */
export function canarySize(step: number, replicas: number): number {
  return Math.min(replicas, Math.max(1, Math.ceil((step * replicas) / 100)));
}

/** Per-instance weights giving `canaryCount` canaries `step` percent of the traffic next to `stableCount` servers. */
export function canaryWeights(step: number, stableCount: number, canaryCount = 1): { canary: number; stable: number } {
  // canaryCount * canary / (canaryCount * canary + stableCount * stable) = step / 100, within HAProxy's 1-256 range.
  let canary = step * stableCount;
  let stable = (100 - step) * canaryCount;
  const scale = Math.max(canary, stable) / 256;
  if (scale > 1) {
    canary = Math.round(canary / scale);
    stable = Math.round(stable / scale);
  }
  return { canary: Math.max(1, canary), stable: Math.max(1, stable) };
}

function compare(step: number, before: ServerStats[], after: ServerStats[], canaries: string[], stable: string[]): CanaryVerdict {
  const delta = (names: string[]) => {
    let responses = 0;
    let errors = 0;
    for (const name of names) {
      const a = after.find((s) => s.name === name);
      const b = before.find((s) => s.name === name);
      responses += (a?.responses ?? 0) - (b?.responses ?? 0);
      errors += (a?.errors5xx ?? 0) + (a?.failures ?? 0) - (b?.errors5xx ?? 0) - (b?.failures ?? 0);
    }
    return { responses, errors };
  };
  return { step, canary: delta(canaries), stable: delta(stable) };
}

function ratio(x: { responses: number; errors: number }): number {
  return x.responses === 0 ? 0 : x.errors / x.responses;
}
