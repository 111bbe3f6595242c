import { expect } from "vitest";
import type { ReleaseSpec } from "../../lib/release/spec.ts";
import { FULL } from "../../lib/release/moves.ts";
import type { ReleaseRecord } from "../../lib/release/records.ts";
import { release } from "../../lib/release/release.ts";
import { Faults, fakeEnvironment } from "./release-fakes.ts";

/**
 * The cases every strategy's unit tests share: a previous release (v1) to start from, what
 * serves afterwards, and the sweeps that crash at each outside call or cancel at each point.
 */

export type Env = ReturnType<typeof fakeEnvironment>;
export const trigger = { type: "manual" as const, by: "test" };
export const NEW = "r2";

/** Releases v1 (the previous release every case starts from). */
export async function withV1(spec: ReleaseSpec, opts: Parameters<typeof fakeEnvironment>[0] = {}): Promise<{ env: Env; v1: ReleaseRecord }> {
  const env = fakeEnvironment(opts);
  const v1 = await release(env.deps, env.ctx, { id: "r1", image: "app:v1", spec: { ...spec, hoist: { ...spec.hoist, strategy: "blue-green" } }, trigger });
  expect(v1.status).toBe("succeeded");
  env.faults.calls = 0;
  env.cancelFrom(undefined);
  return { env, v1 };
}

export const releaseV2 = (env: Env, spec: ReleaseSpec, id = NEW) => release(env.deps, env.ctx, { id, image: "app:v2", spec, trigger });

/** What serves: the router sends traffic, at full weight, exactly to `names`, and nothing else of the app runs. */
export function expectServing(env: Env, names: readonly string[]): void {
  const sorted = [...names].sort();
  expect(env.router.table(env.ctx.backend)).toEqual(sorted.map((n) => `${n} ${FULL} ready`));
  expect(env.host.running()).toEqual(sorted);
}

/** How many outside calls and cancel questions a release of `spec` makes with nothing going wrong. */
export async function cleanRun(spec: ReleaseSpec, opts: Parameters<typeof fakeEnvironment>[0] = {}): Promise<{ calls: number; asked: number }> {
  const { env } = await withV1(spec, opts);
  const done = await releaseV2(env, spec);
  expect(done.status).toBe("succeeded");
  return { calls: env.faults.calls, asked: env.asked };
}

/** Crash at every outside call in turn, then resume under the same id: the release finishes as if nothing happened. */
export async function crashEverywhere(spec: ReleaseSpec, opts: Parameters<typeof fakeEnvironment>[0] = {}): Promise<number> {
  const { calls } = await cleanRun(spec, opts);
  for (let at = 0; at < calls; at++) {
    const { env } = await withV1(spec, opts);
    env.faults.fail = Faults.crashAt(at);
    const first = await releaseV2(env, spec).catch((err: unknown) => err);
    const call = env.faults.log.at(at - env.faults.calls) ?? "";
    // The image check tries an outage again in place (see pull.ts): there the release goes on.
    if (/host\.ensureImage/.test(call)) {
      expect(first, `crash at ${call}`).toMatchObject({ status: "succeeded" });
      continue;
    }
    expect(first, `crash at call ${at}: ${call}`).toBeInstanceOf(Error);
    // Running, or not begun; or succeeded when the worker died tidying up after it.
    expect(["running", undefined, "succeeded"]).toContain((await env.store.getRelease("prod", NEW))?.status);
    env.faults.fail = undefined;
    const resumed = await releaseV2(env, spec);
    expect(resumed.status, `crash at ${env.faults.log[at]}: ${resumed.error}`).toBe("succeeded");
    expect(resumed.instances.map((n) => env.host.instances.get(n)?.labels["hoist.release"])).toEqual(resumed.instances.map(() => NEW));
    expectServing(env, resumed.instances);
    expect(env.store.leases.size).toBe(0);
  }
  return calls;
}

/** A cancel at every point the strategy asks: the previous release serves alone again, the record says cancelled. */
export async function cancelEverywhere(spec: ReleaseSpec): Promise<number> {
  const { asked } = await cleanRun(spec);
  expect(asked).toBeGreaterThan(0);
  for (let k = 0; k < asked; k++) {
    const { env, v1 } = await withV1(spec);
    env.cancelFrom(k);
    const done = await releaseV2(env, spec);
    expect(done, `cancel at question ${k}`).toMatchObject({ status: "cancelled", rolledBack: true, error: "run cancelled" });
    expectServing(env, v1.instances);
    expect(await env.host.list({ "hoist.release": NEW })).toEqual([]);
  }
  return asked;
}

