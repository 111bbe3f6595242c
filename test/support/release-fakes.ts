import { instanceHostError } from "../../lib/engine/docker.ts";
import type { ChangeFeed, GroupProgress, GroupUpdate, Instance, InstanceGroups, InstanceHost, InstanceSpec } from "../../lib/engine/instances.ts";
import { NotFoundError, RetryableError } from "../../lib/errors.ts";
import type { Environment, EnvironmentStore } from "../../lib/release/environment.ts";
import type { ReleaseSpec } from "../../lib/release/spec.ts";
import type { HealthProbe, ProbeAnswer, ReleaseClock, ReleaseContext } from "../../lib/release/ports.ts";
import type { ReleaseRecord, ReleaseStore } from "../../lib/release/records.ts";
import type { ReleaseDeps } from "../../lib/release/release.ts";
import { RouterError, type Router, type RouterServer, type ServerAdminState, type ServerStats } from "../../lib/router/port.ts";

/**
 * In-memory ports for the release core's unit tests: a host, a router, a health probe and a
 * clock whose sleep advances time at once, sharing one fault plan so that a test can make the
 * N-th call to the outside fail (a crash, an outage) and see what the release does about it.
 */

/** Time that passes only when someone sleeps; each sleep also lets traffic flow through the router. */
export class VirtualClock implements ReleaseClock {
  t = Date.UTC(2026, 0, 1);
  readonly onSleep: ((ms: number) => void)[] = [];

  now(): number {
    return this.t;
  }

  async sleep(ms: number): Promise<void> {
    this.t += Math.max(0, ms);
    for (const hook of this.onSleep) hook(ms);
    await Promise.resolve();
  }
}

/** Which calls to the outside fail: `fail(part, method, n)` sees every call, numbered from 0, and throws to fail it. */
export class Faults {
  calls = 0;
  readonly log: string[] = [];
  fail: ((part: "host" | "router", method: string, n: number, args: unknown[]) => void) | undefined;

  hit(part: "host" | "router", method: string, args: unknown[]): void {
    const n = this.calls++;
    this.log.push(`${n} ${part}.${method}(${args.filter((a) => typeof a !== "object").join(", ")})`);
    this.fail?.(part, method, n, args);
  }

  /** The worker dies at call `at` (the release resumes when re-driven, as after a retryable error). */
  static crashAt(at: number): Faults["fail"] {
    return (_part, _method, n) => {
      if (n === at) throw new RetryableError("worker killed");
    };
  }
}

interface FakeInstance extends Instance {
  spec: Omit<InstanceSpec, "name">;
}

/** Containers on one host (DockerInstances' naming); stopped ones stay until removed. */
export class FakeHost implements InstanceHost {
  readonly instances = new Map<string, FakeInstance>();
  readonly images = new Set<string>();
  private nextAddress = 2;

  constructor(readonly faults: Faults) {}

  /** What a container's own health check says of a new instance (one with a healthcheck). */
  containerHealth: (spec: InstanceSpec) => "starting" | "healthy" | "unhealthy" = () => "healthy";

  private readonly watchers: { method: "start" | "stop"; pattern: RegExp; look: () => void }[] = [];

  /** What `look` sees just before each `method` call on an instance whose name matches `pattern`: the host as the release found it when it acted. */
  watch<T>(method: "start" | "stop", pattern: RegExp, look: () => T): T[] {
    const seen: T[] = [];
    this.watchers.push({ method, pattern, look: () => seen.push(look()) });
    return seen;
  }

  protected noticed(method: "start" | "stop", name: string): void {
    for (const w of this.watchers) if (w.method === method && w.pattern.test(name)) w.look();
  }

  instanceName(set: string, index: number): string {
    return `${set}-${index}`;
  }

  async start(spec: InstanceSpec): Promise<Instance> {
    this.faults.hit("host", "start", [spec.name]);
    this.noticed("start", spec.name);
    const known = this.instances.get(spec.name);
    if (known) {
      // Started again, an exited container runs its command again.
      known.running = true;
      delete known.exitCode;
      return { ...known };
    }
    const { name, ...settings } = spec;
    const health = spec.healthcheck ? this.containerHealth(spec) : undefined;
    const instance: FakeInstance = {
      name,
      image: spec.image,
      address: `10.0.0.${this.nextAddress++}`,
      port: spec.port,
      running: true,
      labels: spec.labels,
      spec: settings,
      ...(health ? { health } : {}),
    };
    this.instances.set(name, instance);
    return { ...instance };
  }

  async inspect(name: string): Promise<Instance | undefined> {
    this.faults.hit("host", "inspect", [name]);
    const known = this.instances.get(name);
    return known && { ...known };
  }

  async list(labels: Record<string, string>): Promise<Instance[]> {
    this.faults.hit("host", "list", []);
    return [...this.instances.values()].filter((i) => Object.entries(labels).every(([k, v]) => i.labels[k] === v)).map((i) => ({ ...i }));
  }

  async stop(name: string): Promise<void> {
    this.faults.hit("host", "stop", [name]);
    this.noticed("stop", name);
    const known = this.instances.get(name);
    if (known) known.running = false;
  }

  async remove(name: string): Promise<void> {
    this.faults.hit("host", "remove", [name]);
    this.instances.delete(name);
  }

  /** Images a pull finds in their registry; a pull of any other fails for good. */
  readonly registry = new Set<string>();

  async ensureImage(ref: string): Promise<void> {
    this.faults.hit("host", "ensureImage", [ref]);
    if (this.images.has(ref)) return;
    if (!this.registry.has(ref)) throw new NotFoundError(`pulling ${ref} failed: manifest unknown: the registry does not hold it`);
    this.images.add(ref);
  }

  async runningDigest(name: string): Promise<string | undefined> {
    this.faults.hit("host", "runningDigest", [name]);
    return this.instances.get(name)?.image.split("@")[1];
  }

  logsCommand(name: string): string {
    return `docker logs ${name}`;
  }

  readonly networks = new Set<string>();
  readonly volumes = new Set<string>();

  async ensureNetwork(name: string): Promise<void> {
    this.faults.hit("host", "ensureNetwork", [name]);
    this.networks.add(name);
  }

  async ensureVolume(name: string): Promise<void> {
    this.faults.hit("host", "ensureVolume", [name]);
    this.volumes.add(name);
  }

  /** Names of the running instances, sorted. */
  running(): string[] {
    return [...this.instances.values()].filter((i) => i.running).map((i) => i.name).sort();
  }

  byAddress(address: string): FakeInstance | undefined {
    return [...this.instances.values()].find((i) => i.address === address);
  }
}

/**
 * HAProxy's runtime API as the Router port promises it: adds are idempotent, taking a gone
 * server out of service is done, giving it traffic is an error; `down` makes every call fail
 * as an unreachable proxy does. Traffic (per `serve`) is counted on the servers that take it.
 */
export class FakeRouter implements Router {
  /** Each routes map: key (host + path) to backend. */
  readonly maps = new Map<string, Map<string, string>>();

  async setRoutes(map: string, backend: string, routes: readonly { host: string; path: string }[]): Promise<void> {
    this.faults.hit("router", "setRoutes", [map, backend]);
    const entries = this.maps.get(map) ?? new Map<string, string>();
    for (const [key, value] of entries) if (value === backend) entries.delete(key);
    for (const r of routes) entries.set(`${r.host}${r.path}`, backend);
    this.maps.set(map, entries);
  }

  readonly backends = new Map<string, Map<string, RouterServer & ServerStats>>();
  down = false;

  constructor(
    readonly faults: Faults,
    /** Whether a request to `server` fails with a 5xx. */
    private readonly errorRate: (server: string) => number = () => 0,
  ) {}

  private backend(name: string): Map<string, RouterServer & ServerStats> {
    let b = this.backends.get(name);
    if (!b) this.backends.set(name, (b = new Map()));
    return b;
  }

  private call(method: string, args: unknown[]): void {
    this.faults.hit("router", method, args);
    if (this.down) throw new RouterError(`cannot reach HAProxy's runtime API (ECONNREFUSED)`, { retryable: true });
  }

  async servers(backend: string): Promise<RouterServer[]> {
    this.call("servers", [backend]);
    return [...this.backend(backend).values()].map(({ name, address, port, weight, state }) => ({ name, address, port, weight, state }));
  }

  async addServer(backend: string, server: { name: string; address: string; port: number; weight: number }): Promise<void> {
    this.call("addServer", [backend, server.name, server.weight]);
    const b = this.backend(backend);
    if (!b.has(server.name)) b.set(server.name, { ...server, state: "maint", responses: 0, errors5xx: 0, failures: 0, sessions: 0 });
  }

  async setWeight(backend: string, name: string, weight: number): Promise<void> {
    this.call("setWeight", [backend, name, weight]);
    const server = this.backend(backend).get(name);
    if (server) server.weight = weight;
    else if (weight !== 0) throw new RouterError(`backend "${backend}" has no server "${name}"`);
  }

  async setState(backend: string, name: string, state: ServerAdminState): Promise<void> {
    this.call("setState", [backend, name, state]);
    const server = this.backend(backend).get(name);
    if (server) server.state = state;
    else if (state === "ready") throw new RouterError(`backend "${backend}" has no server "${name}"`);
  }

  async removeServer(backend: string, name: string): Promise<void> {
    this.call("removeServer", [backend, name]);
    this.backend(backend).delete(name);
  }

  async stats(backend: string): Promise<ServerStats[]> {
    this.call("stats", [backend]);
    return [...this.backend(backend).values()].map(({ name, responses, errors5xx, failures, sessions }) => ({ name, responses, errors5xx, failures, sessions }));
  }

  /** Spreads `requests` over the ready servers by weight, as the proxy would. */
  serve(requests: number): void {
    for (const b of this.backends.values()) {
      const taking = [...b.values()].filter((s) => s.state === "ready" && s.weight > 0);
      const total = taking.reduce((sum, s) => sum + s.weight, 0);
      for (const s of taking) {
        const share = Math.round((requests * s.weight) / total);
        s.responses += share;
        s.errors5xx += Math.round(share * this.errorRate(s.name));
      }
    }
  }

  /** `name weight state` of each server of `backend`, sorted. */
  table(backend: string): string[] {
    return [...this.backend(backend).values()].map((s) => `${s.name} ${s.weight} ${s.state}`).sort();
  }
}

/** Answers each instance's health probe as `healthy` says (a stopped one does not answer). */
export class ScriptedProbe implements HealthProbe {
  constructor(
    private readonly host: FakeHost,
    public healthy: (instance: Instance) => boolean = () => true,
  ) {}

  async get(address: string): Promise<ProbeAnswer> {
    const instance = this.host.byAddress(address);
    if (!instance?.running) return { error: "connect ECONNREFUSED" };
    return { status: this.healthy(instance) ? 200 : 500 };
  }
}

/** The release store as DynamoReleaseStore keeps it: one lease per environment, records newest first; and, as the server's, the environments. */
export class MemoryReleaseStore implements ReleaseStore, EnvironmentStore {
  readonly records = new Map<string, ReleaseRecord>();
  readonly leases = new Map<string, { owner: string; until: number }>();
  readonly envs = new Map<string, Environment>();

  async putEnvironment(env: Environment): Promise<void> {
    this.envs.set(env.name, structuredClone(env));
  }

  async getEnvironment(name: string): Promise<Environment | undefined> {
    const env = this.envs.get(name);
    return env && structuredClone(env);
  }

  async listEnvironments(): Promise<Environment[]> {
    return [...this.envs.values()].map((e) => structuredClone(e));
  }

  async lock(env: string, owner: string, until: number, now: number): ReturnType<ReleaseStore["lock"]> {
    const held = this.leases.get(env);
    if (held && held.owner !== owner && held.until > now) return { ok: false, holder: held.owner, until: held.until };
    this.leases.set(env, { owner, until });
    return { ok: true };
  }

  async unlock(env: string, owner: string): Promise<void> {
    if (this.leases.get(env)?.owner === owner) this.leases.delete(env);
  }

  async putRelease(record: ReleaseRecord): Promise<void> {
    this.records.set(`${record.env}/${record.id}`, structuredClone(record));
  }

  async listReleases(env: string, limit = 100): Promise<ReleaseRecord[]> {
    return [...this.records.values()]
      .filter((r) => r.env === env)
      .sort((a, b) => b.startedAt - a.startedAt || b.id.localeCompare(a.id))
      .slice(0, limit)
      .map((r) => structuredClone(r));
  }

  async getRelease(env: string, id: string): Promise<ReleaseRecord | undefined> {
    const r = this.records.get(`${env}/${id}`);
    return r && structuredClone(r);
  }
}

/**
 * Swarm as the release core sees it: one service per release set, whose tasks are its instances
 * (`<set>.<slot>.<task>`), and its own rolling update, one batch per look at its progress, each
 * new task gated by `healthy`; on a failed batch it pauses or rolls back as the update says.
 */
export class FakeSwarm extends FakeHost implements InstanceGroups {
  readonly groups: InstanceGroups = this;
  readonly services = new Map<string, { spec: Omit<InstanceSpec, "name">; previous?: Omit<InstanceSpec, "name">; update?: GroupUpdate; state: GroupProgress["state"]; slots: number; done: number; message: string }>();
  private task = 0;
  reverted: string[] = [];

  constructor(
    faults: Faults,
    private readonly clock: VirtualClock,
    public healthy: (release: string, slot: number) => boolean = () => true,
  ) {
    super(faults);
  }

  override instanceName(set: string, index: number): string {
    return `${set}.${index + 1}`;
  }

  groupOf(instance: string): string {
    return instance.replace(/\.\d+(\.[a-z0-9]+)?$/, "");
  }

  /** Starting slot k of a set scales its service to k tasks. */
  override async start(spec: InstanceSpec): Promise<Instance> {
    this.faults.hit("host", "start", [spec.name]);
    this.noticed("start", spec.name);
    const group = this.groupOf(spec.name);
    const slot = Number(spec.name.slice(group.length + 1));
    const { name: _name, ...settings } = spec;
    const service = this.services.get(group) ?? { spec: settings, state: "none" as const, slots: 0, done: 0, message: "" };
    this.services.set(group, service);
    service.slots = Math.max(service.slots, slot);
    this.runTasks(group);
    return { ...this.taskIn(group, slot)! };
  }

  override async stop(name: string): Promise<void> {
    this.faults.hit("host", "stop", [name]);
    this.noticed("stop", name);
    const group = this.groupOf(name);
    for (const i of this.instances.values()) if (this.groupOf(i.name) === group) this.instances.delete(i.name);
    const service = this.services.get(group);
    if (service) service.slots = 0;
  }

  override async remove(name: string): Promise<void> {
    this.faults.hit("host", "remove", [name]);
    const group = this.groupOf(name);
    for (const i of this.instances.values()) if (this.groupOf(i.name) === group) this.instances.delete(i.name);
    this.services.delete(group);
  }

  async update(group: string, spec: GroupUpdate): Promise<void> {
    this.faults.hit("host", "update", [group]);
    const service = this.services.get(group);
    if (!service) throw instanceHostError(`update service ${group}`, Object.assign(new Error("service not found"), { statusCode: 404 }));
    if (service.spec.labels["hoist.release"] === spec.labels["hoist.release"]) return;
    const { replicas, update: _u, rollback: _r, healthcheck: _h, ...settings } = spec;
    Object.assign(service, { previous: service.spec, spec: settings, update: spec, state: "updating", slots: replicas, done: 0, message: "update in progress" });
  }

  async progress(group: string): Promise<GroupProgress | undefined> {
    this.faults.hit("host", "progress", [group]);
    const service = this.services.get(group);
    if (!service) return undefined;
    if (service.state === "updating" || service.state === "rollback_started") this.roll(group);
    const serving = [...this.instances.values()].filter((i) => this.groupOf(i.name) === group && i.running).map((i) => ({ ...i }));
    return { state: service.state, message: service.message, replicas: service.slots, serving };
  }

  async revert(group: string, release: string): Promise<void> {
    this.faults.hit("host", "revert", [group]);
    const service = this.services.get(group);
    if (!service?.previous || service.spec.labels["hoist.release"] !== release) return;
    this.reverted.push(group);
    Object.assign(service, { spec: service.previous, state: "rollback_started", done: 0, message: "manually requested rollback" });
    delete service.previous;
  }

  async changes(): Promise<ChangeFeed> {
    return { next: async (timeoutMs) => (await this.clock.sleep(timeoutMs), false), close: () => undefined };
  }

  /** One step of the update: the next batch of slots replaced (a rollback replaces them all). */
  private roll(group: string): void {
    const service = this.services.get(group)!;
    if (service.state === "rollback_started") {
      for (let slot = 1; slot <= service.slots; slot++) this.replace(group, slot);
      Object.assign(service, { state: "rollback_completed", message: "rollback completed" });
      return;
    }
    const policy = service.update!.update;
    const batch = policy.parallelism || service.slots;
    for (let slot = service.done + 1; slot <= Math.min(service.slots, service.done + batch); slot++) {
      if (!this.healthy(service.spec.labels["hoist.release"]!, slot)) {
        if (policy.failureAction === "rollback") {
          service.spec = service.previous!;
          Object.assign(service, { state: "rollback_started", message: `update rolled back due to failure or early termination of task ${group}.${slot}` });
        } else Object.assign(service, { state: "paused", message: `update paused due to failure or early termination of task ${group}.${slot}` });
        return;
      }
      this.replace(group, slot);
    }
    service.done = Math.min(service.slots, service.done + batch);
    if (service.done === service.slots) Object.assign(service, { state: "completed", message: "update completed" });
  }

  /** Slot `slot` of the set runs a new task of its current settings. */
  private replace(group: string, slot: number): void {
    const old = this.taskIn(group, slot);
    if (old) this.instances.delete(old.name);
    const service = this.services.get(group)!;
    const name = `${group}.${slot}.t${String(this.task++).padStart(4, "0")}`;
    this.instances.set(name, { name, image: service.spec.image, address: `10.1.${Math.floor(this.task / 250)}.${(this.task % 250) + 2}`, port: service.spec.port, running: true, labels: service.spec.labels, spec: service.spec });
  }

  private taskIn(group: string, slot: number): FakeInstance | undefined {
    return [...this.instances.values()].find((i) => i.name.startsWith(`${group}.${slot}.`));
  }

  private runTasks(group: string): void {
    const service = this.services.get(group)!;
    for (let slot = 1; slot <= service.slots; slot++) if (!this.taskIn(group, slot)) this.replace(group, slot);
  }
}

/** How the instances of an app's `service` are, by name: `hoist-prod-db-r1-0 healthy`, `hoist-prod-migrate-r1-0 exited 0`. */
export function serviceStates(host: FakeHost, service: string): string[] {
  return [...host.instances.values()]
    .filter((i) => i.labels["hoist.service"] === service)
    .map((i) => `${i.name} ${i.running ? (i.health ?? "running") : `exited ${i.exitCode}`}`)
    .sort();
}

/** The calls to the host since the `from`-th that name an instance of an app's `service`, without their numbers. */
export function callsOn(faults: Faults, service: string, from = 0): string[] {
  return faults.log
    .slice(from)
    .map((l) => l.replace(/^\d+ /, ""))
    .filter((l) => l.includes(`-${service}-`));
}

/** A release description with Compose's defaults, fast health checks and no drain. */
export function releaseSpec(overrides: Partial<Omit<ReleaseSpec, "hoist" | "update">> & { hoist?: Partial<ReleaseSpec["hoist"]>; update?: Partial<ReleaseSpec["update"]> } = {}): ReleaseSpec {
  const policy = { parallelism: 1, delayMs: 0, order: "stop-first" as const, failureAction: "pause" as const, monitorMs: 5_000, maxFailureRatio: 0 };
  return {
    service: "web",
    environment: {},
    port: 8080,
    replicas: 3,
    resources: {},
    rollback: policy,
    ...overrides,
    update: { ...policy, ...overrides.update },
    hoist: {
      strategy: "rolling",
      steps: [10, 50, 100],
      intervalMs: 30_000,
      health: { path: "/healthz", status: 200, timeoutMs: 2_000, intervalMs: 1_000, retries: 5 },
      errorThreshold: 0.05,
      drainMs: 5_000,
      ...overrides.hoist,
    },
  };
}

/** One environment on fakes: its context, the release deps over it, and the fakes to script and inspect. */
export function fakeEnvironment(opts: { swarm?: boolean; errorRate?: (server: string) => number } = {}) {
  const faults = new Faults();
  const clock = new VirtualClock();
  const host = opts.swarm ? new FakeSwarm(faults, clock) : new FakeHost(faults);
  host.images.add("app:v1").add("app:v2");
  const router = new FakeRouter(faults, opts.errorRate);
  // 100 requests a second while time passes.
  clock.onSleep.push((ms) => router.serve(Math.round(ms / 10)));
  const probe = new ScriptedProbe(host);
  const log: string[] = [];
  let cancelled: ((n: number) => boolean) | undefined;
  let asked = 0;
  const ctx: ReleaseContext = {
    env: "prod",
    backend: "web_be",
    host,
    router,
    probe,
    clock,
    log: (line) => log.push(line),
    stopped: async () => {
      const n = asked++;
      return cancelled?.(n) ? "run cancelled" : undefined;
    },
  };
  const store = new MemoryReleaseStore();
  const deps: ReleaseDeps = { store, now: () => clock.now(), leaseMs: 10 * 60_000 };
  return {
    ctx,
    deps,
    store,
    host,
    router,
    probe,
    clock,
    faults,
    log,
    /** The run is cancelled from the `n`-th question on (numbered from 0). */
    cancelFrom(n: number | undefined) {
      asked = 0;
      cancelled = n === undefined ? undefined : (k) => k >= n;
    },
    /** How often the release asked whether it was cancelled. */
    get asked() {
      return asked;
    },
    /**
     * Each time the release waits, the running instances whose names match `pattern` change as
     * `change` says (a container's health check passes, a one-off exits): what it waits for.
     */
    whenTimePasses(pattern: RegExp, change: (instance: Instance) => void) {
      clock.onSleep.push(() => {
        for (const i of host.instances.values()) if (i.running && pattern.test(i.name)) change(i);
      });
    },
  };
}
