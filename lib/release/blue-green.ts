import type { Instance } from "../engine/instances.ts";
import { enroll, FULL, launch, moveFailure, retire, unlessStopped } from "./moves.ts";
import type { ReleaseOutcome, ReleasePlan } from "./plan.ts";
import type { ReleaseContext } from "./ports.ts";

/** The whole new set starts and passes its health gate, then the weights switch at once. */
export async function blueGreen(ctx: ReleaseContext, plan: ReleasePlan): Promise<ReleaseOutcome> {
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
