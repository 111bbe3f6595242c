import { blueGreen } from "./blue-green.ts";
import { rollInPlace } from "./in-place.ts";
import { enroll, FULL, launch, moveFailure, restore, retire, unlessStopped } from "./moves.ts";
import type { ReleaseOutcome, ReleasePlan } from "./plan.ts";
import type { ReleaseContext } from "./ports.ts";

/** Batches of `parallelism`, each health-gated; `order` says whether new starts before old stops. */
export async function rolling(ctx: ReleaseContext, plan: ReleasePlan): Promise<ReleaseOutcome> {
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
