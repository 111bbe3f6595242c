import type { Instance } from "../engine/instances.ts";
import type { ServerStats } from "../router/port.ts";
import { enroll, FULL, launch, moveFailure, retire, unlessStopped, waitUntil } from "./moves.ts";
import type { CanaryVerdict, ReleaseOutcome, ReleasePlan } from "./plan.ts";
import type { ReleaseContext } from "./ports.ts";

/**
 * The canary set takes `step` percent of the traffic, step after step, growing with it (like
 * Argo Rollouts: `ceil(step% x replicas)` instances, at least one), so it has the capacity for
 * its share. After each interval its 5xx ratio (from the router's counters) is compared with
 * the stable set's; worse by more than the threshold, and it is taken out with the stable
 * weights restored. Then the rest of the new set starts and the stable set is let go.
 */
export async function canary(ctx: ReleaseContext, plan: ReleasePlan): Promise<ReleaseOutcome> {
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
export async function withdrawCanaries(ctx: ReleaseContext, stable: string[], canaries: string[], drainMs: number): Promise<void> {
  for (const name of stable) await ctx.router.setWeight(ctx.backend, name, FULL);
  await retire(ctx, canaries, drainMs);
  for (const name of canaries) await ctx.host.remove(name);
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
