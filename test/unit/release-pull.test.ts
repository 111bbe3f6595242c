import { describe, expect, it } from "vitest";
import { RetryableError } from "../../lib/errors.ts";
import { release } from "../../lib/release/release.ts";
import { releaseSpec } from "../support/release-fakes.ts";
import { expectServing, trigger, withV1 } from "../support/release-cases.ts";

/**
 * A release on a host that lacks its image pulls it first, before anything changes; what the
 * registry refuses or lacks fails the release with the previous one serving, and an outage is
 * tried again a few times. The record names the digest its instances run. (On real engines and
 * a registry with logins: test/e2e/any-host.test.ts.)
 */

const DIGEST = `sha256:${"d".repeat(64)}`;
const BY_DIGEST = `reg.example:5000/shop@${DIGEST}`;
const spec = releaseSpec({ hoist: { strategy: "blue-green" } });

describe("a release pulls what its host lacks", () => {
  it("pulls an image by digest that only the registry holds, and records the digest its instances run", async () => {
    const { env } = await withV1(spec);
    env.host.registry.add(BY_DIGEST);
    const done = await release(env.deps, env.ctx, { id: "r2", image: BY_DIGEST, spec, trigger });
    expect(done).toMatchObject({ status: "succeeded", image: BY_DIGEST, digest: DIGEST });
    expect(env.host.images.has(BY_DIGEST)).toBe(true);
    expect(env.log.join("\n")).toContain(`release r2 succeeded, running ${DIGEST}`);
  });

  it("fails before anything changes when the registry does not hold the image: the previous release serves", async () => {
    const { env, v1 } = await withV1(spec);
    const mark = env.faults.log.length;
    const done = await release(env.deps, env.ctx, { id: "r2", image: BY_DIGEST, spec, trigger }).catch((e: unknown) => e);
    expect(done).toMatchObject({ name: "ReleaseError" });
    expect((done as Error).message).toMatch(/cannot release to prod: pulling .* the registry does not hold it/);
    expectServing(env, v1.instances);
    // Nothing was recorded for the release that never began, and nothing of it was started.
    expect(await env.store.getRelease("prod", "r2")).toBeUndefined();
    expect(env.faults.log.slice(mark).filter((l) => l.includes("host.start"))).toEqual([]);
  });

  it("tries a pull again through a short outage, saying so, then releases", async () => {
    const { env } = await withV1(spec);
    env.host.registry.add(BY_DIGEST);
    let outages = 2;
    env.faults.fail = (part, method) => {
      if (method === "ensureImage" && outages-- > 0) throw new RetryableError("pulling: registry reg.example:5000 did not answer");
    };
    const done = await release(env.deps, env.ctx, { id: "r2", image: BY_DIGEST, spec, trigger });
    expect(done.status).toBe("succeeded");
    expect(env.log.filter((l) => /did not answer: trying again in \d+ s/.test(l))).toHaveLength(2);
  });

  it("fails, the previous release serving, when the registry stays down through every try", async () => {
    const { env, v1 } = await withV1(spec);
    env.host.registry.add(BY_DIGEST);
    env.faults.fail = (_part, method) => {
      if (method === "ensureImage") throw new RetryableError("pulling: registry reg.example:5000 did not answer");
    };
    const started = env.clock.now();
    const err = await release(env.deps, env.ctx, { id: "r2", image: BY_DIGEST, spec, trigger }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot release to prod: .*did not answer/);
    // A bounded wait (about 15 s of tries), not a loop.
    expect(env.clock.now() - started).toBeLessThanOrEqual(20_000);
    expectServing(env, v1.instances);
  });
});
