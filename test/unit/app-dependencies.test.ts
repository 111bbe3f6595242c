import { describe, expect, it } from "vitest";
import type { ReleaseSpec } from "../../lib/release/spec.ts";
import { FULL } from "../../lib/release/moves.ts";
import { release } from "../../lib/release/release.ts";
import { appSpec } from "../support/app-spec.ts";
import { trigger, type Env } from "../support/release-cases.ts";
import { callsOn, fakeEnvironment, serviceStates } from "../support/release-fakes.ts";

/**
 * depends_on conditions, as `docker compose up` honours them: a one-off (a migration) runs to
 * its end before what needs it starts, and a service waits for its dependency's own health check.
 */

const lines = (...l: string[]) => l.join("\n") + "\n";

/** web (routed) needs the migration done; the migration needs the database healthy. */
const APP = lines(
  "services:",
  "  web:",
  "    build: .",
  "    ports: ['8080']",
  "    depends_on: { migrate: { condition: service_completed_successfully } }",
  "  migrate:",
  "    image: shop-migrate:1",
  "    command: [migrate]",
  "    depends_on: { db: { condition: service_healthy } }",
  "  db:",
  "    image: postgres:16",
  "    volumes: ['pgdata:/var/lib/postgresql/data']",
  "    healthcheck: { test: ['CMD', 'pg_isready'], interval: 1s }",
  "volumes: { pgdata: {} }",
);

/** The app read with `image` built for its services that build. */
const app = (text: string, image: string): Promise<ReleaseSpec> => appSpec(text, { built: { image } });

/**
 * A host where health checks pass, and migrations end (shop-migrate:2 with code 1, the others
 * with 0), only once time has passed: a release that does not wait sees them still starting.
 */
function env(): Env {
  const e = fakeEnvironment();
  for (const i of ["postgres:16", "redis:7", "shop-migrate:1", "shop-migrate:2", "shop:v1", "shop:v2"]) e.host.images.add(i);
  e.host.containerHealth = () => "starting";
  e.whenTimePasses(/./, (i) => {
    if (i.health === "starting") i.health = "healthy";
  });
  e.whenTimePasses(/-migrate-/, (i) => {
    i.running = false;
    i.exitCode = i.image === "shop-migrate:2" ? 1 : 0;
  });
  return e;
}

describe("service_completed_successfully: a one-off such as a migration", () => {
  it("runs (once, never restarted by the engine) after what it needs is healthy, and is done before its dependents start", async () => {
    const e = env();
    const migrateStarts = e.host.watch("start", /-migrate-/, () => serviceStates(e.host, "db"));
    const webStarts = e.host.watch("start", /-web-/, () => serviceStates(e.host, "migrate"));
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await app(APP, "shop:v1"), trigger });
    expect(v1.status).toBe("succeeded");
    expect(migrateStarts).toEqual([["hoist-prod-db-r1-0 healthy"]]);
    expect(webStarts).toEqual([["hoist-prod-migrate-r1-0 exited 0"]]);
    expect(e.host.instances.get("hoist-prod-migrate-r1-0")?.spec.runtime?.restart).toEqual({ name: "no" });
    expect(v1.companions?.migrate).toEqual(["hoist-prod-migrate-r1-0"]);
  });

  it("that exits non-zero fails the release: no new instance is left, and the previous app serves as it was", async () => {
    const e = env();
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await app(APP, "shop:v1"), trigger });
    const from = e.faults.log.length;
    const webStarts = e.host.watch("start", /-web-/, () => "started");
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v2", spec: await app(APP.replace("shop-migrate:1", "shop-migrate:2"), "shop:v2"), trigger });
    expect(v2).toMatchObject({
      status: "failed",
      rolledBack: true,
      error: "migrate exited with code 1, and a service waits for it to succeed; see `docker logs hoist-prod-migrate-r2-0`",
    });
    expect(webStarts).toEqual([]);
    expect([...e.host.instances.keys()].filter((n) => n.includes("-r2-"))).toEqual([]);
    expect(e.router.table(e.ctx.backend)).toEqual(v1.instances.map((n) => `${n} ${FULL} ready`));
    expect(serviceStates(e.host, "db")).toEqual(["hoist-prod-db-r1-0 healthy"]);
    // The previous migration ran to its end with v1: putting v1 back does not run it again.
    expect(callsOn(e.faults, "migrate", from).filter((c) => c.startsWith("host.start"))).toEqual(["host.start(hoist-prod-migrate-r2-0)"]);
    expect(serviceStates(e.host, "migrate")).toEqual(["hoist-prod-migrate-r1-0 exited 0"]);
  });

  it("that fails on the first release leaves nothing of the app running", async () => {
    const e = env();
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await app(APP.replace("shop-migrate:1", "shop-migrate:2"), "shop:v1"), trigger });
    expect(v1).toMatchObject({ status: "failed", rolledBack: true, error: expect.stringMatching(/^migrate exited with code 1/) });
    expect(e.host.running()).toEqual([]);
    expect(e.router.table(e.ctx.backend)).toEqual([]);
  });

  it("that completed, with its definition unchanged, is not run again by the next release", async () => {
    const e = env();
    await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await app(APP, "shop:v1"), trigger });
    const from = e.faults.log.length;
    const webStarts = e.host.watch("start", /-web-/, () => serviceStates(e.host, "migrate"));
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v2", spec: await app(APP, "shop:v2"), trigger });
    expect(v2).toMatchObject({ status: "succeeded", companions: { migrate: ["hoist-prod-migrate-r1-0"] } });
    expect(callsOn(e.faults, "migrate", from).filter((c) => !c.startsWith("host.inspect"))).toEqual([]);
    expect(webStarts).toEqual([["hoist-prod-migrate-r1-0 exited 0"]]);
  });
});

describe("service_healthy", () => {
  const worker = (dependency: string) =>
    lines(
      "services:",
      "  worker:",
      "    image: shop:v1",
      "    depends_on: { cache: { condition: service_healthy } }",
      "  cache:",
      "    image: redis:7",
      dependency,
    );

  it("starts the dependent only once its dependency's own health check passed", async () => {
    const e = env();
    const workerStarts = e.host.watch("start", /-worker-/, () => serviceStates(e.host, "cache"));
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await app(worker("    healthcheck: { test: ['CMD', 'redis-cli', 'ping'] }"), "shop:v1"), trigger });
    expect(v1.status).toBe("succeeded");
    expect(workerStarts).toEqual([["hoist-prod-cache-r1-0 healthy"]]);
  });

  it("fails the release, saying what to add, when the dependency has no health check", async () => {
    const e = env();
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await app(worker(""), "shop:v1"), trigger });
    expect(v1).toMatchObject({
      status: "failed",
      rolledBack: true,
      error: "cache has no health check, and a service waits for it to be healthy: give cache a healthcheck",
    });
    expect(callsOn(e.faults, "worker")).toEqual([]);
    expect(e.host.running()).toEqual([]);
  });
});
