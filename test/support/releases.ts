import { setTimeout as sleep } from "node:timers/promises";
import type Dockerode from "dockerode";
import type { InstanceHost } from "../../lib/engine/instances.ts";
import { startServers, type StartedServers } from "../../lib/local/servers.mjs";
import { readApp, readReleaseSpec } from "../../lib/compose/app.ts";
import type { ReleaseSpec } from "../../lib/release/spec.ts";
import { httpProbe } from "../../lib/release/http-probe.ts";
import type { ReleaseContext } from "../../lib/release/ports.ts";
import type { EnvironmentStore } from "../../lib/release/environment.ts";
import type { ReleaseStore } from "../../lib/release/records.ts";
import type { ReleaseDeps } from "../../lib/release/release.ts";
import { systemReleaseClock } from "../../lib/release/targets.ts";
import { HaproxyRouter } from "../../lib/router/haproxy.ts";
import { loopbackDynamoApi } from "../../lib/store/dynamo-loopback.ts";
import { DynamoReleaseStore } from "../../lib/store/dynamo-releases.ts";
import { ensureTable } from "../../lib/store/dynamo-table.ts";
import { DynamoVariableStore } from "../../lib/store/dynamo-variables.ts";
import type { VariableStore } from "../../lib/release/variables.ts";
import { buildApp } from "./apps.ts";
import { afterAll, beforeAll } from "vitest";
import { removeContainers, requireDocker, uniqueSuffix } from "./docker.ts";
import { SwarmInstances } from "../../lib/engine/swarm-instances.ts";
import { DockerInstances } from "../../lib/engine/docker-instances.ts";
import { statusOf } from "../../lib/engine/docker.ts";
import { startHaproxy } from "./haproxy.ts";
import { waitFor } from "./wait.ts";
import { startLoad, type LoadReport } from "./load.ts";

/**
 * What the release end-to-end tests share, whatever runs the instances: a release store,
 * the app images v1, v2, v3 (fails its health check) and bad (answers 500 to one request in
 * three), HAProxy per environment, and steady load through it.
 */

/** Requests per second through HAProxy for the whole release: not one may fail. */
export const RATE = 200;
export const trigger = { type: "manual" as const, by: "e2e" };

export type AppName = "v1" | "v2" | "v3" | "bad";

export interface ReleaseBench {
  /** Part of every name this run makes (images, environments, so instances). */
  suffix: string;
  /** Its store also keeps environments, as the server's does. */
  deps: ReleaseDeps & { store: ReleaseStore & EnvironmentStore };
  images: Record<AppName, string>;
  /**
   * The environments' variables (`hoist env vars set`), in the same table: a release reads the
   * values its compose secrets name from here when it starts their containers, as the server's do.
   */
  variables: VariableStore;
  /** A fresh environment with its own HAProxy, releasing onto `host`. */
  environment(name: string, host: InstanceHost): Promise<{ ctx: ReleaseContext; url: string; log: string[] }>;
  /** Stops the HAProxies and the servers and untags the images (not the instances: the host's owner removes those first). */
  close(): Promise<void>;
}

/**
 * A bench for the whole file: made before its tests (on the engine, which must answer), and
 * after them everything its environments released removed, then the bench closed.
 */
export function useReleaseBench(): () => { docker: Dockerode; bench: ReleaseBench } {
  let docker: Dockerode;
  let bench: ReleaseBench;
  beforeAll(async () => {
    docker = await requireDocker();
    bench = await startReleaseBench(docker);
  }, 120_000);
  afterAll(async () => {
    if (bench) await removeReleased(docker, bench.suffix);
    await bench?.close();
  }, 120_000);
  return () => ({ docker, bench });
}

export async function startReleaseBench(docker: Dockerode): Promise<ReleaseBench> {
  const suffix = uniqueSuffix();
  const cleanups: (() => Promise<unknown>)[] = [];
  const servers: StartedServers = await startServers({});
  cleanups.push(() => servers.close());
  try {
    const api = loopbackDynamoApi(servers.dynamodb);
    const table = `rel-${suffix}`;
    await ensureTable(api, table);
    const deps = { store: new DynamoReleaseStore(api, table), now: () => Date.now(), leaseMs: 10 * 60_000 };
    const variables = new DynamoVariableStore(api, table, systemReleaseClock);
    const apps = { v1: { version: "v1" }, v2: { version: "v2" }, v3: { version: "v3", healthy: false }, bad: { version: "bad", failOneIn: 3 } };
    const images = {} as Record<AppName, string>;
    for (const [name, app] of Object.entries(apps) as [AppName, (typeof apps)[AppName]][]) {
      const ref = `hoist-e2e-app-${suffix}:${name}`;
      images[name] = await buildApp(docker, ref, app);
      // Untagged last, once the instances are gone (by reference, without force: best effort).
      cleanups.push(() => docker.getImage(ref).remove());
    }

    return {
      suffix,
      deps,
      images,
      variables,
      async environment(name, host) {
        const haproxy = await startHaproxy();
        cleanups.push(() => haproxy.stop());
        const log: string[] = [];
        const env = `${name}-${suffix}`;
        const ctx: ReleaseContext = {
          env,
          backend: haproxy.backend,
          host,
          router: new HaproxyRouter({ socket: haproxy.socket }),
          probe: httpProbe,
          clock: systemReleaseClock,
          log: (line) => log.push(line),
          // As lib/services.ts wires it: values are read only when a release starts containers.
          variables: async () => new Map((await variables.variableValues(env)).map((v) => [v.name, v.value] as const)),
        };
        return { ctx, url: `${haproxy.url}/cgi-bin/app`, log };
      },
      close: () => closeAll(cleanups),
    };
  } catch (err) {
    await closeAll(cleanups);
    throw err;
  }
}

async function closeAll(cleanups: (() => Promise<unknown>)[]): Promise<void> {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  cleanups.length = 0;
}

/** A one-service compose file with `x-hoist`, two replicas, start-first rolling updates (watched 1 s each on Swarm). */
export async function compose(strategy: string, extra = ""): Promise<ReleaseSpec> {
  const text = `services:
  web:
    image: placeholder
    ports: ["8080"]
    deploy:
      replicas: 2
      update_config: { parallelism: 1, order: start-first, failure_action: rollback, monitor: 1s }
    x-hoist:
      strategy: ${strategy}
      health: { path: /healthz, status: 200, interval: 200ms, retries: 10 }
      drain: 1s
      interval: 2s
${extra}`;
  const parsed = await readReleaseSpec(text, "web");
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.spec;
}

/**
 * A three-service app of the test app's image (test/support/app-server.c) in three roles: a routed
 * web (blue-green, 2 replicas) that asks "db" by its name on /db; a worker; a db that keeps a
 * counter in a named volume, healthy by its own check. `dbVersion` changes the db's definition.
 */
export async function threeServiceApp(images: { web: string; other: string }, dbVersion = "1", routes?: string[]): Promise<ReleaseSpec> {
  const text = `services:
  web:
    build: .
    ports: ["8080"]
    environment: { UPSTREAM: "db:8080" }
    depends_on: { db: { condition: service_healthy }, worker: { condition: service_started } }
    deploy:
      replicas: 2
    x-hoist:
      strategy: blue-green
      health: { path: /healthz, status: 200, interval: 200ms, retries: 10 }
      drain: 1s${routes ? `\n      routes: ${JSON.stringify(routes)}` : ""}
  worker:
    image: ${images.other}
    environment: { ROLE: worker }
    configs: [{ source: role, target: /etc/hoist/role.conf, mode: 0440 }]
  db:
    image: ${images.other}
    environment: { COUNTER_FILE: /data/count, DB_VERSION: "\${DB_VERSION}" }
    volumes: ["counter:/data"]
    deploy: { placement: { constraints: ["node.role==manager"] } }
    healthcheck: { test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"], interval: 1s, timeout: 2s, retries: 20 }
volumes:
  counter: {}
configs:
  role: { content: "worker role \${DB_VERSION}" }
`;
  const r = await readApp(text, { variables: { DB_VERSION: dbVersion }, built: { image: images.web } });
  if (!r.ok) throw new Error(r.error);
  return r.spec;
}

/**
 * Runs `work` with RATE requests/s through `url`: 1.5 s of steady traffic first (marks
 * "release" and "after" bracket the work), 1 s after.
 */
export async function underLoad<T>(url: string, work: () => Promise<T>): Promise<{ result: T; report: LoadReport; ms: number }> {
  const load = await startLoad(url, RATE);
  await sleep(1500);
  load.mark("release");
  const started = Date.now();
  let result: T;
  try {
    result = await work();
  } catch (err) {
    await load.stop().catch(() => undefined);
    throw err;
  }
  const ms = Date.now() - started;
  load.mark("after");
  await sleep(1000);
  const report = await load.stop();
  return { result, report, ms };
}

/**
 * Removes what releases to the bench's environments left on the engine: Swarm services first
 * (removing a task's container under a live service only makes Swarm start another), then
 * containers, and the apps' networks, volumes and Swarm secrets.
 */
export async function removeReleased(docker: Dockerode, suffix: string): Promise<void> {
  const mine = (labels: Record<string, string> | undefined) => labels?.["hoist.env"]?.endsWith(suffix) ?? false;
  // Services and secrets only where the engine is a swarm manager (a second engine is not).
  const manager = ((await docker.info()) as { Swarm?: { ControlAvailable?: boolean } }).Swarm?.ControlAvailable === true;
  const swarm = new SwarmInstances(docker);
  const services = manager ? await docker.listServices({ filters: { label: ["hoist.env"] } }) : [];
  await Promise.all(services.filter((s) => mine(s.Spec?.Labels)).map((s) => swarm.remove(s.Spec!.Name!)));
  await removeContainers(docker, "hoist.env", (labels) => mine(labels));
  // A network whose last container was just removed can still show its endpoint for a moment.
  for (const n of await docker.listNetworks({ filters: { label: ["hoist.env"] } }))
    if (mine(n.Labels))
      await waitFor(`network ${n.Name} to be removed`, () => docker.getNetwork(n.Id).remove().then(() => true, (err: unknown) => (statusOf(err) === 404 ? true : Promise.reject(err))), 30_000, 250);
  const { Volumes } = await docker.listVolumes({ filters: { label: ["hoist.env"] } });
  for (const v of Volumes ?? []) if (mine(v.Labels ?? undefined)) await docker.getVolume(v.Name).remove().catch(() => undefined);
  for (const x of manager ? await docker.listSecrets({ filters: { label: ["hoist.env"] } }) : []) if (mine(x.Spec?.Labels)) await docker.getSecret(x.ID).remove().catch(() => undefined);
}

/** Each kind of host a release runs on, for `describe.each`: containers on a Docker host, services on Swarm. */
export function hostModes(docker: () => Dockerode): [string, () => Promise<InstanceHost>][] {
  return [
    ["a Docker host", async () => new DockerInstances(docker())],
    [
      "Swarm",
      async () => {
        await requireSwarmManager(docker());
        return new SwarmInstances(docker());
      },
    ],
  ];
}

/** Fails (never skips) when the engine cannot run services. */
export async function requireSwarmManager(docker: Dockerode): Promise<void> {
  const swarm = ((await docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }).Swarm;
  if (swarm?.LocalNodeState !== "active" || !swarm.ControlAvailable)
    throw new Error(
      `the Docker engine is not a Swarm manager (node state: ${swarm?.LocalNodeState || "unknown"}, manager: ${swarm?.ControlAvailable ?? false}): run bash scripts/services.sh`,
    );
}
