import { describe, expect, it } from "vitest";
import type { ReleaseSpec } from "../../lib/release/spec.ts";
import { release } from "../../lib/release/release.ts";
import { appSpec } from "../support/app-spec.ts";
import { trigger, type Env } from "../support/release-cases.ts";
import { callsOn, fakeEnvironment, serviceStates } from "../support/release-fakes.ts";

/**
 * How a release replaces the services around the routed one: a worker start-first (no moment
 * without one), a stateful service stop-first (never two containers on its volume), and an
 * unchanged one not at all.
 */

const lines = (...l: string[]) => l.join("\n") + "\n";

const APP = lines(
  "services:",
  "  web:",
  "    build: .",
  "    ports: ['8080']",
  "  worker:",
  "    build: .",
  "    command: [work]",
  "    deploy: { replicas: 2 }",
  "    healthcheck: { test: ['CMD', 'true'], interval: 1s }",
  "  db:",
  "    image: postgres:16",
  "    volumes: ['pgdata:/var/lib/postgresql/data']",
  "volumes: { pgdata: {} }",
);

/** The app read with `image` built for its services that build. */
const app = (text: string, image: string): Promise<ReleaseSpec> => appSpec(text, { built: { image } });

/** v1 released on a host whose containers pass their health checks once time has passed; `from` is where v2's calls will begin in the log. */
async function withV1(): Promise<{ e: Env; from: number }> {
  const e = fakeEnvironment();
  for (const i of ["postgres:16", "postgres:17", "shop:v1", "shop:v2"]) e.host.images.add(i);
  e.host.containerHealth = () => "starting";
  e.whenTimePasses(/./, (i) => {
    if (i.health === "starting") i.health = "healthy";
  });
  const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await app(APP, "shop:v1"), trigger });
  expect(v1.status).toBe("succeeded");
  return { e, from: e.faults.log.length };
}

const startsAndStops = (calls: string[]) => calls.filter((c) => /^host\.(start|stop|remove)\(/.test(c));

describe("a worker (no route)", () => {
  it("is replaced start-first: its new instances run and pass their health check before the old ones stop", async () => {
    const { e, from } = await withV1();
    const newAtStop = e.host.watch("stop", /-worker-r1-/, () => serviceStates(e.host, "worker").filter((s) => s.includes("-r2-")));
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v2", spec: await app(APP, "shop:v2"), trigger });
    expect(v2.companions?.worker).toEqual(["hoist-prod-worker-r2-0", "hoist-prod-worker-r2-1"]);
    expect(startsAndStops(callsOn(e.faults, "worker", from))).toEqual([
      "host.start(hoist-prod-worker-r2-0)",
      "host.start(hoist-prod-worker-r2-1)",
      "host.stop(hoist-prod-worker-r1-0)",
      "host.stop(hoist-prod-worker-r1-1)",
    ]);
    const healthy = ["hoist-prod-worker-r2-0 healthy", "hoist-prod-worker-r2-1 healthy"];
    expect(newAtStop).toEqual([healthy, healthy]);
  });
});

describe("a stateful service (a named volume)", () => {
  it("is recreated stop-first, on the same volume, when only its image changed", async () => {
    const { e, from } = await withV1();
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v1", spec: await app(APP.replace("postgres:16", "postgres:17"), "shop:v1"), trigger });
    expect(v2.companions?.db).toEqual(["hoist-prod-db-r2-0"]);
    expect(startsAndStops(callsOn(e.faults, "db", from))).toEqual(["host.stop(hoist-prod-db-r1-0)", "host.start(hoist-prod-db-r2-0)"]);
    const db = e.host.instances.get("hoist-prod-db-r2-0")!;
    expect(db.image).toBe("postgres:17");
    expect(db.spec.runtime?.mounts).toEqual([{ type: "volume", source: "hoist-prod-pgdata", target: "/var/lib/postgresql/data", readOnly: false }]);
  });

  it("is left untouched when neither its definition nor its image changed", async () => {
    const { e, from } = await withV1();
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v2", spec: await app(APP, "shop:v2"), trigger });
    expect(v2.companions?.db).toEqual(["hoist-prod-db-r1-0"]);
    expect(startsAndStops(callsOn(e.faults, "db", from))).toEqual([]);
    expect(serviceStates(e.host, "db")).toEqual(["hoist-prod-db-r1-0 running"]);
  });
});
