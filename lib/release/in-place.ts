import { withChanges, type HealthcheckSpec, type InstanceGroups } from "../engine/instances.ts";
import { instanceSettings, ReleaseError } from "./moves.ts";
import { ReleaseParked, type ReleaseOutcome, type ReleasePlan } from "./plan.ts";
import type { ReleaseContext } from "./ports.ts";
import { inSet, syncRouter } from "./router-sync.ts";

/**
 * While the host rolls, Hoist looks at the set after each piece of the engine's news about it
 * (see InstanceGroups.changes), then a few times QUICK_LOOK_MS apart (a task turns running a
 * moment after its container's news), and otherwise every IDLE_LOOK_MS. Polling it four times a
 * second instead raised the p99 latency of the traffic during a Swarm rolling update from about
 * 1.5x to about 2.4x its steady p99 (bench/zero-downtime --mode swarm --strategy rolling): each
 * look lists the service's tasks, work for the engine on the app's CPUs.
 */
const QUICK_LOOK_MS = 250;
const IDLE_LOOK_MS = 1_000;
/** When a parked rolling update is looked at again. */
const PARKED_LOOK_MS = 1_000;
/** An update Swarm neither finishes nor pauses in this long is reported as stuck. */
const STUCK_MS = 15 * 60_000;

/**
 * Swarm counts a failed task asynchronously, while its updater moves on to the next batch at
 * once: with stop-first and no delay, a failing release can stop the next batch's old tasks
 * before the rollback starts, leaving nothing to serve. A pause between batches lets the
 * failure land first.
 */
const MIN_STOP_FIRST_DELAY_MS = 2_000;

/**
 * Rolling on a host that rolls its own sets (Swarm): the serving service is updated in place with
 * the compose file's `update_config` and `rollback_config`, and Swarm replaces its tasks batch by
 * batch, each gated by the container's health check, pausing or rolling back by itself on failure.
 * Hoist tracks the update, keeping the router in step with the tasks that serve. Swarm stops an old
 * task when it decides to, a moment before Hoist sees it go: HAProxy's retries (`retry-on
 * conn-failure empty-response`, `option redispatch`) carry the requests caught in that moment to
 * another server.
 */
export async function rollInPlace(ctx: ReleaseContext, plan: ReleasePlan, groups: InstanceGroups): Promise<ReleaseOutcome> {
  const group = groups.groupOf(plan.live[0]!);
  const asked = plan.spec.update;
  let update = asked.order === "stop-first" ? { ...asked, delayMs: Math.max(asked.delayMs, MIN_STOP_FIRST_DELAY_MS) } : asked;
  if (update.failureAction === "continue") {
    // Once an update that went on past failures completes, Swarm restarts each slot whose new
    // task failed by stopping the old task still serving there (seen here: every old task of a
    // never-healthy release stopped within seconds, an outage). Pausing keeps them serving.
    ctx.log("failure_action continue runs as pause on Swarm: its continue ends by stopping the old tasks of failed slots");
    update = { ...update, failureAction: "pause" };
  }
  ctx.log(`rolling update of ${group} to ${plan.image}: ${update.parallelism || "all"} at a time, ${update.order}, on failure ${update.failureAction}`);
  // Listening before the update begins: nothing it does goes unnoticed.
  return withChanges(groups, group, { quickMs: QUICK_LOOK_MS, idleMs: IDLE_LOOK_MS }, async (wait) => {
    await groups.update(group, {
      ...instanceSettings(ctx, plan),
      replicas: plan.spec.replicas,
      update,
      rollback: plan.spec.rollback,
      healthcheck: plan.spec.healthcheck ?? httpHealthcheck(plan),
    });
    const began = ctx.clock.now();
    return trackUpdate(ctx, plan, groups, group, { began, deadline: (plan.startedAt ?? began) + STUCK_MS, wait });
  });
}

/** Looks at the update as `wait` paces it until it ends, or the release parks. */
async function trackUpdate(
  ctx: ReleaseContext,
  plan: ReleasePlan,
  groups: InstanceGroups,
  group: string,
  { began, deadline, wait }: { began: number; deadline: number; wait: () => Promise<void> },
): Promise<ReleaseOutcome> {
  for (;;) {
    const progress = await groups.progress(group);
    if (!progress) throw new ReleaseError(`service ${group} is gone while it was being updated: release again to start a new one`);
    const inStep = await syncRouter(ctx, plan.spec.hoist.health, inSet(group), progress.serving);
    const instances = progress.serving.map((i) => i.name);
    const swarmSays = `${progress.state}${progress.message ? `: ${progress.message}` : ""}`;
    if (progress.state === "paused" || progress.state === "rollback_paused")
      return { ok: false, error: `Swarm paused the update of ${group} (${swarmSays}); see \`${ctx.host.logsCommand(group)}\``, rolledBack: false, instances };
    if (inStep && progress.state === "rollback_completed")
      return { ok: false, error: `Swarm rolled ${group} back (${swarmSays}); see \`${ctx.host.logsCommand(group)}\``, rolledBack: true, instances };
    if (inStep && progress.state === "completed") {
      // With failure_action continue, Swarm finishes even when some new tasks never became healthy.
      const fresh = progress.serving.filter((i) => i.labels["hoist.release"] === plan.id).length;
      if (fresh === 0) return { ok: false, error: `no new instance became healthy (Swarm: ${swarmSays})`, rolledBack: false, instances };
      if (fresh < instances.length) ctx.log(`${instances.length - fresh} previous instance(s) still serve in place of new ones that failed (Swarm: ${swarmSays})`);
      return { ok: true, instances };
    }
    if (ctx.clock.now() >= deadline)
      return { ok: false, error: `the update of ${group} did not finish in ${STUCK_MS / 60_000} min (Swarm: ${swarmSays})`, rolledBack: false, instances };
    // A long update is tracked a slice at a time: past the caller's patience the release
    // parks, and a later call (the same update, already under way) looks again.
    if (ctx.clock.now() - began >= (plan.parkAfterMs ?? Number.POSITIVE_INFINITY)) {
      const until = ctx.clock.now() + PARKED_LOOK_MS;
      const waiting = `Swarm's rolling update of ${group} (${swarmSays})`;
      await plan.checkpoint?.({ until, waiting });
      throw new ReleaseParked(until, waiting);
    }
    await wait();
  }
}

/** The shortest interval of a health check Hoist derives: see httpHealthcheck. */
const MIN_CHECK_INTERVAL_MS = 1_000;

/**
 * The x-hoist HTTP health gate as a container health check, for hosts that gate on that (Swarm's
 * rolling update): fetched inside the container with the image's wget (busybox, alpine) or curl.
 * An image with neither fails it, and the update stops there with the old tasks serving; give
 * such an image a compose `healthcheck:`, which takes precedence. The check runs for the
 * container's whole life, each time an exec in it (a process start, on the engine's CPU), so
 * it runs at most once a second, with as many retries as the gate's patience allows.
 */
export function httpHealthcheck(plan: ReleasePlan): HealthcheckSpec {
  const { health } = plan.spec.hoist;
  const url = `http://127.0.0.1:${plan.spec.port}${health.path}`;
  const intervalMs = Math.max(health.intervalMs, MIN_CHECK_INTERVAL_MS);
  return {
    test: ["CMD-SHELL", `wget -q -O /dev/null ${url} || curl -fsS -o /dev/null ${url}`],
    intervalMs,
    timeoutMs: health.timeoutMs,
    retries: Math.max(1, Math.ceil((health.retries * health.intervalMs) / intervalMs)),
    startPeriodMs: 0,
  };
}
