import type { InstanceGroups } from "../engine/instances.ts";
import { blueGreen } from "./blue-green.ts";
import { canary, withdrawCanaries } from "./canary.ts";
import type { ReleaseOutcome, ReleasePlan } from "./plan.ts";
import type { ReleaseContext } from "./ports.ts";
import type { Checkpoint } from "./records.ts";
import { rolling } from "./rolling.ts";
import { inSet, servingBySet, syncRouter } from "./router-sync.ts";

/** Where the canary arithmetic's unit tests have always found it. */

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
