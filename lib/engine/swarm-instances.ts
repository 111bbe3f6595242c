import type Dockerode from "dockerode";
import { registryHostOf } from "../registry/host.ts";
import type { RegistryAuth } from "../registry/auth.ts";
import { dockerHealthcheck, EngineError, instanceHostError, statusOf } from "./docker.ts";
import { createHash } from "node:crypto";
import { anonymous, ensureImage, type RegistryLogins } from "./images.ts";
import {
  withChanges,
  type ChangeFeed,
  type GroupProgress,
  type GroupUpdate,
  type GroupUpdateState,
  type Instance,
  type InstanceGroups,
  type InstanceFile,
  type InstanceHost,
  type InstanceSpec,
  type UpdatePolicy,
} from "./instances.ts";
import { serviceChanges } from "./swarm-events.ts";

export interface SwarmInstancesOptions {
  /** How long `start` waits for a running task. Default 60 s. */
  startTimeoutMs?: number;
  /** How long `stop` and `remove` wait for the tasks' containers to go. Default 30 s. */
  stopTimeoutMs?: number;
  /** How soon a task is looked at again after news about its service. Default 200 ms. */
  pollMs?: number;
}

/** The longest a wait for a service's tasks goes without a look when the engine reports nothing. */
const IDLE_LOOK_MS = 1_000;

const STOP_GRACE_NS = 10e9;
const ACTIVE_TASK_STATES = new Set(["new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"]);
const FAILED_TASK_STATES = new Set(["failed", "rejected"]);

/** Swarm's task container name, `<service>.<slot>.<task id>`; an instance to start is named without the id. */
const TASK_NAME = /^(.+)\.(\d+)(?:\.([a-z0-9]{25}))?$/;

/** What a service inspection gives; dockerode's type lacks UpdateStatus. */
type ServiceInfo = Dockerode.Service & { UpdateStatus?: { State?: string; Message?: string } };

interface TaskInfo {
  ID: string;
  Slot?: number;
  DesiredState?: string;
  CreatedAt?: string;
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> } };
  Status?: { State?: string; Err?: string; Message?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
}

/**
 * A release's instances as the replicas of one Swarm service per release (`hoist-<env>-<service>-<release>`),
 * each instance one task, named as Swarm names the task's container (`<service>.<slot>.<task id>`).
 * Blue-green and canary run two such services side by side behind the router; a rolling release updates
 * the serving one in place with Swarm's own rolling update (`groups`).
 *
 * The router (HAProxy on this host) reaches each task at its container's address:
 * - not through the ingress routing mesh, which does not route on these hosts (no IPVS in the kernel);
 *   so services publish no ports and use DNS round-robin endpoints (a virtual IP needs IPVS too);
 * - not through ports published in host mode, which collide between two services on one node;
 * - but on the engine's default bridge: a service that names no network runs its tasks there, at
 *   addresses the host routes to. Swarm also skips its fixed 2 s "gossip converge" pause before
 *   stopping such a task (it has no service binding to withdraw).
 *
 * Such an address is reachable only from the node running the task: this is for a router next to a
 * single-node swarm. Starting instance k scales the service up to k replicas. Swarm scales a service,
 * not a chosen task, so stopping or removing an instance acts on its whole service; the strategies
 * only ever let a whole set go on this host. Stopping scales to 0: Swarm deletes the tasks but keeps the
 * service, so scaling back brings the same image and settings back within seconds (at new addresses).
 */
export class SwarmInstances implements InstanceHost, InstanceGroups {
  readonly groups: InstanceGroups = this;
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly pollMs: number;
  /** Task addresses never change, so each task's container is inspected once. */
  private readonly addresses = new Map<string, string>();

  constructor(
    private readonly docker: Dockerode,
    opts: SwarmInstancesOptions = {},
    /** Logins for pulling: the manager's own check, and every node's through the service. */
    private readonly logins: RegistryLogins = anonymous,
  ) {
    this.startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 200;
  }

  instanceName(set: string, index: number): string {
    return `${set}.${index + 1}`;
  }

  groupOf(instance: string): string {
    return parseName(instance).service;
  }

  async start(spec: InstanceSpec): Promise<Instance> {
    const { service: name, slot } = parseName(spec.name);
    return this.following(name, async (wait) => {
      let service = await this.service(name);
      if (!service) {
        const { image, auth } = await this.pinnedImage(spec.image);
        const secrets = await Promise.all((spec.files ?? []).map((f) => this.secretFor(f, spec.labels)));
        try {
          // The two-argument form: with one argument dockerode also sends the whole spec
          // (environment included) as the X-Registry-Auth header, which Swarm then stores.
          // With a login, Swarm keeps it for the nodes that pull the image.
          await this.docker.createService(auth ?? NO_AUTH, serviceSpec(name, spec, image, slot, secrets));
        } catch (err) {
          // 409: a concurrent start of the same name created it first; use that one.
          if (statusOf(err) !== 409) throw instanceHostError(`create service ${name}`, err);
        }
        service = await this.service(name);
        if (!service) throw new EngineError(`service ${name} vanished right after it was created: was it removed concurrently?`, { retryable: true });
      } else if ((replicas(service) ?? 0) < slot) {
        service = await this.updateSpec(name, `scale service ${name} to ${slot}`, (s) => ({ ...s, Mode: { Replicated: { Replicas: slot } } }));
      }
      return this.waitSlot(service, slot, wait);
    });
  }

  async inspect(name: string): Promise<Instance | undefined> {
    const { service: serviceName, slot } = parseName(name);
    const service = await this.service(serviceName);
    if (!service) return undefined;
    const tasks = (await this.tasks(service.ID)).filter((t) => t.Slot === slot);
    const task = tasks.find(isRunning);
    const address = task ? await this.address(task) : undefined;
    return task && address ? toInstance(service, task, address) : ended(service, slot, tasks[0]);
  }

  async list(labels: Record<string, string>): Promise<Instance[]> {
    const services = await this.call("list services", () =>
      this.docker.listServices({ filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } }),
    );
    const perService = await Promise.all(
      services.map(async (s) => {
        const serving = (await this.describe(s)).serving;
        return serving.length ? serving : [stopped(s, 1)];
      }),
    );
    return perService.flat();
  }

  async stop(name: string): Promise<void> {
    const group = this.groupOf(name);
    const service = await this.service(group);
    if (!service) return;
    await this.following(group, async (wait) => {
      // One task at a time, like DockerInstances' stops: stopping containers takes the host's
      // CPU from the instances serving, and two at once delayed them twice as much.
      for (let left = (replicas(service) ?? 0) - 1; left >= 0; left--) {
        await this.updateSpec(group, `scale service ${group} to ${left}`, (s) => ({ ...s, Mode: { Replicated: { Replicas: left } } })).catch(ignoreGone);
        await this.waitGone(service, `stop ${group}`, true, wait, left);
      }
      await this.waitGone(service, `stop ${group}`, true, wait);
    });
  }

  async remove(name: string): Promise<void> {
    const group = this.groupOf(name);
    const service = await this.service(group);
    if (!service) return;
    await this.following(group, async (wait) => {
      try {
        await this.docker.getService(service.ID).remove();
      } catch (err) {
        ignoreGone(instanceHostError(`remove service ${group}`, err));
      }
      // Swarm deletes the containers after the service, asynchronously. Waiting for them makes
      // "removed" mean removed, as with DockerInstances; but the service is gone either way, so
      // a slow engine is no reason to fail a rollback that has already succeeded.
      await this.waitGone(service, `remove ${group}`, false, wait);
    });
  }

  /**
   * Runs `fn` with a wait between its looks at the service that ends on the engine's news about
   * it: far fewer task listings than polling (see in-place.ts), as quick to notice a change.
   */
  private following<T>(service: string, fn: (wait: () => Promise<void>) => Promise<T>): Promise<T> {
    return withChanges(this, service, { quickMs: this.pollMs, idleMs: IDLE_LOOK_MS }, fn);
  }

  async ensureNetwork(name: string, labels: Record<string, string>, edge = false): Promise<void> {
    try {
      await this.docker.getNetwork(name).inspect();
      return;
    } catch (err) {
      if (statusOf(err) !== 404) throw instanceHostError(`inspect network ${name}`, err);
    }
    try {
      // An app's services reach each other on an attachable overlay, across nodes; the router
      // reaches routed tasks on a swarm-scoped bridge, whose addresses the node routes to (an
      // overlay's are inside its own namespace).
      await this.docker.createNetwork(
        edge
          ? { Name: name, Driver: "bridge", Scope: "swarm", CheckDuplicate: true, Labels: labels }
          : { Name: name, Driver: "overlay", Attachable: true, CheckDuplicate: true, Labels: labels },
      );
    } catch (err) {
      if (statusOf(err) !== 409) throw instanceHostError(`create network ${name}`, err);
    }
  }

  async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
    // On the manager's node; a task placed on another node gets that node's volume of the name.
    await this.call(`create volume ${name}`, () => this.docker.createVolume({ Name: name, Labels: labels }));
  }

  /** The Swarm secret holding `file`'s content, made unless one of that name exists (the name carries the variable's version). */
  private async secretFor(file: InstanceFile, labels: Record<string, string>): Promise<{ SecretID: string; SecretName: string; File: { Name: string; UID: string; GID: string; Mode: number } }> {
    const name = `${labels["hoist.env"] ?? "hoist"}-${createHash("sha256").update(`${file.path}\0${file.content}`).digest("hex").slice(0, 24)}`;
    let id: string | undefined;
    try {
      id = ((await this.docker.getSecret(name).inspect()) as { ID: string }).ID;
    } catch (err) {
      if (statusOf(err) !== 404) throw instanceHostError(`inspect secret ${name}`, err);
    }
    if (!id) {
      try {
        id = ((await this.docker.createSecret({ Name: name, Labels: { "hoist.env": labels["hoist.env"] ?? "" }, Data: Buffer.from(file.content).toString("base64") })) as { id: string }).id;
      } catch (err) {
        if (statusOf(err) !== 409) throw instanceHostError(`create secret ${name}`, err);
        id = ((await this.docker.getSecret(name).inspect()) as { ID: string }).ID;
      }
    }
    return { SecretID: id, SecretName: name, File: { Name: file.path, UID: String(file.uid), GID: String(file.gid), Mode: file.mode } };
  }

  async removeUnusedFiles(env: string): Promise<void> {
    const label = { label: [`hoist.env=${env}`] };
    const [secrets, services] = await Promise.all([this.call("list secrets", () => this.docker.listSecrets({ filters: label })), this.call("list services", () => this.docker.listServices({ filters: label }))]);
    const used = new Set(services.flatMap((s) => (s.Spec?.TaskTemplate as { ContainerSpec?: { Secrets?: { SecretID?: string }[] } } | undefined)?.ContainerSpec?.Secrets?.map((x) => x.SecretID) ?? []));
    for (const secret of secrets.filter((x) => !used.has(x.ID)))
      await this.docker
        .getSecret(secret.ID)
        .remove()
        .catch((err: unknown) => {
          // Gone already, or taken up meanwhile by a service Swarm has not listed yet: left as it is.
          if (![400, 404, 409].includes(statusOf(err) ?? 0)) throw instanceHostError(`remove secret ${secret.Spec?.Name ?? secret.ID}`, err);
        });
  }

  logsCommand(name: string): string {
    const service = this.groupOf(name);
    return `docker service ps --no-trunc ${service}; docker service logs ${service}`;
  }

  async ensureImage(ref: string): Promise<void> {
    await ensureImage(this.docker, ref, this.logins);
  }

  async runningDigest(name: string): Promise<string | undefined> {
    // What a running task runs, as Swarm pinned it (`repo@sha256:...`): read from the task, not
    // its container, which on a cluster is on another node than the manager.
    const service = await this.service(parseName(name).service);
    const task = service ? (await this.tasks(service.ID)).find(isRunning) : undefined;
    const pinned = (task?.Spec as { ContainerSpec?: { Image?: string } } | undefined)?.ContainerSpec?.Image ?? "";
    return /@(sha256:[0-9a-f]{64})$/.exec(pinned)?.[1];
  }

  async update(group: string, spec: GroupUpdate): Promise<void> {
    const current = await this.service(group);
    if (!current) throw new EngineError(`service ${group} is gone: release again to start a new one`, { retryable: false, statusCode: 404 });
    // A resumed release finds its own update already under way: starting it again would restart it.
    if (current.Spec?.Labels?.["hoist.release"] === spec.labels["hoist.release"]) return;
    const { image, auth } = await this.pinnedImage(spec.image);
    const secrets = await Promise.all((spec.files ?? []).map((f) => this.secretFor(f, spec.labels)));
    await this.updateSpec(
      group,
      `update service ${group}`,
      (s) => ({
        ...s,
        ...serviceSpec(group, spec, image, spec.replicas, secrets),
        UpdateConfig: swarmPolicy(spec.update),
        RollbackConfig: swarmPolicy(spec.rollback),
      }),
      auth,
    );
  }

  changes(group: string): Promise<ChangeFeed> {
    return this.call("follow the engine's events", () => serviceChanges(this.docker, group));
  }

  async revert(group: string, release: string): Promise<void> {
    const current = await this.service(group);
    if (!current?.Spec || !current.PreviousSpec || current.Spec.Labels?.["hoist.release"] !== release) return;
    // `docker service update --rollback`: Swarm itself goes back to the previous spec.
    await this.call(`roll back service ${group}`, () =>
      this.docker.getService(current.ID).update({ _query: { version: current.Version?.Index, rollback: "previous" }, _body: current.Spec }),
    );
  }

  async progress(group: string): Promise<GroupProgress | undefined> {
    const service = await this.service(group);
    return service ? this.describe(service) : undefined;
  }

  private async describe(service: ServiceInfo): Promise<GroupProgress> {
    const tasks = await this.tasks(service.ID);
    const serving: Instance[] = [];
    for (const task of tasks.filter(isRunning)) {
      const address = await this.address(task);
      if (address) serving.push(toInstance(service, task, address));
    }
    const failed = tasks.find((t) => FAILED_TASK_STATES.has(t.Status?.State ?? "") && t.Status?.Err);
    const message = [service.UpdateStatus?.Message, failed ? `task ${service.Spec?.Name}.${failed.Slot}: ${failed.Status?.Err}` : undefined].filter(Boolean).join("; ");
    return { state: (service.UpdateStatus?.State as GroupUpdateState | undefined) ?? "none", message, replicas: replicas(service) ?? 0, serving };
  }

  /**
   * The reference the service runs `ref` by, and the login its nodes pull it with. The manager
   * pulls the image first when it lacks it, so a missing image or a refused login fails before
   * the service changes. With a tag, Swarm's agent first tries a registry pull (for a local-only
   * name that means Docker Hub, where anyone could publish that name) and only falls back to
   * the local image when the pull fails; it skips the pull for an image ID, and for a
   * repo@digest reference that exists locally. A pushed image runs by its registry digest
   * (other nodes pull it); a local-only one by its ID. Either also pins the service: a tag
   * moved later does not change what a scale back up runs.
   */
  private async pinnedImage(ref: string): Promise<{ image: string; auth: RegistryAuth | undefined }> {
    const auth = await this.logins(registryHostOf(ref));
    const image = await ensureImage(this.docker, ref, async () => auth);
    if (ref.includes("@")) return { image: ref, auth };
    const repo = ref.replace(/:[^/:]*$/, "");
    return { image: (image.RepoDigests ?? []).find((d) => d.startsWith(`${repo}@`)) ?? image.Id, auth };
  }

  private async service(name: string): Promise<ServiceInfo | undefined> {
    try {
      const service = (await this.docker.getService(name).inspect()) as ServiceInfo;
      // The API also matches ID prefixes: only an exact name is this set.
      return service.Spec?.Name === name ? service : undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw instanceHostError(`inspect service ${name}`, err);
    }
  }

  /** Rewrites the service's spec, retrying when another update bumped its version first. */
  private async updateSpec(name: string, what: string, change: (spec: Dockerode.ServiceSpec) => object, auth?: RegistryAuth): Promise<ServiceInfo> {
    for (let attempt = 1; ; attempt++) {
      const service = await this.service(name);
      if (!service?.Spec) throw new EngineError(`service ${name} is gone`, { retryable: false, statusCode: 404 });
      try {
        const update = { _query: { version: service.Version?.Index }, _body: change(service.Spec) };
        // With a login (X-Registry-Auth), Swarm keeps it for the nodes that pull the image.
        await this.docker.getService(service.ID).update(auth ? { ...update, authconfig: auth } : update);
        return (await this.service(name)) ?? service;
      } catch (err) {
        const outOfSequence = /out of sequence/i.test((err as Error).message);
        if (!outOfSequence || attempt >= 5) throw instanceHostError(what, err);
      }
    }
  }

  private async tasks(serviceId: string): Promise<TaskInfo[]> {
    const tasks = (await this.call("list tasks", () => this.docker.listTasks({ filters: { service: [serviceId] } }))) as TaskInfo[];
    // Newest first: a service keeps the tasks it replaced or scaled away as history.
    return tasks.sort((a, b) => (b.CreatedAt ?? "").localeCompare(a.CreatedAt ?? ""));
  }

  private async waitSlot(service: ServiceInfo, slot: number, wait: () => Promise<void>): Promise<Instance> {
    const name = service.Spec?.Name ?? service.ID;
    const deadline = Date.now() + this.startTimeoutMs;
    let last = "no task yet";
    for (;;) {
      const tasks = (await this.tasks(service.ID)).filter((t) => t.Slot === slot);
      const task = tasks.find(isRunning);
      const address = task ? await this.address(task) : undefined;
      if (task && address) return toInstance(service, task, address);
      const newest = tasks[0];
      // A one-off (restart: no) that is done already: completed is its success.
      if (newest?.Status?.State === "complete" && service.Spec?.TaskTemplate && (service.Spec.TaskTemplate as { RestartPolicy?: { Condition?: string } }).RestartPolicy?.Condition === "none")
        return ended(service, slot, newest);
      if (newest?.Status) last = `task ${newest.Status.State}${newest.Status.Err ? `: ${newest.Status.Err}` : ""}`;
      if (Date.now() >= deadline)
        throw new EngineError(
          `service ${name} has no running task in slot ${slot} after ${Math.round(this.startTimeoutMs / 1000)} s (last: ${last}): see \`docker service ps --no-trunc ${name}\``,
          { retryable: false },
        );
      await wait();
    }
  }

  /**
   * Waits until no more than `atMost` tasks of the service are active, and (for a removal) no
   * container of it is left. On the deadline, `strict` fails; otherwise it returns: Swarm
   * converges by itself.
   */
  private async waitGone(service: ServiceInfo, what: string, strict: boolean, wait: () => Promise<void>, atMost = 0): Promise<void> {
    const deadline = Date.now() + this.stopTimeoutMs;
    for (;;) {
      const busy = strict
        ? (await this.tasks(service.ID).catch((err: unknown) => (isGone(err) ? [] : Promise.reject(err)))).filter((t) => ACTIVE_TASK_STATES.has(t.Status?.State ?? ""))
        : await this.call("list containers", () => this.docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.id=${service.ID}`] } }));
      if (busy.length <= atMost) return;
      if (Date.now() >= deadline) {
        if (!strict) return;
        throw new EngineError(`${what}: tasks are still active after ${Math.round(this.stopTimeoutMs / 1000)} s: see \`docker service ps --no-trunc ${service.Spec?.Name ?? service.ID}\``, {
          retryable: true,
        });
      }
      await wait();
    }
  }

  /** The task container's address on the default bridge, or undefined while it has none yet. */
  private async address(task: TaskInfo): Promise<string | undefined> {
    const known = this.addresses.get(task.ID);
    if (known) return known;
    const containerId = task.Status?.ContainerStatus?.ContainerID;
    if (!containerId) return undefined;
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      // On the network the router reaches it on (an app's edge bridge), else the default bridge.
      const routed = task.Spec?.ContainerSpec?.Labels?.["hoist.network"];
      const address = info.NetworkSettings.Networks[routed ?? "bridge"]?.IPAddress || undefined;
      if (address) this.addresses.set(task.ID, address);
      return address;
    } catch (err) {
      if (statusOf(err) === 404) return undefined; // replaced meanwhile
      throw instanceHostError(`inspect the container of task ${task.ID}`, err);
    }
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw instanceHostError(what, err);
    }
  }
}

/** No X-Registry-Auth header: services run local images by ID or digest and never pull. */
const NO_AUTH = undefined as unknown as Dockerode.AuthConfig;

function parseName(name: string): { service: string; slot: number } {
  const match = TASK_NAME.exec(name);
  return match ? { service: match[1]!, slot: Number(match[2]) } : { service: name, slot: 1 };
}

function serviceSpec(name: string, spec: Omit<InstanceSpec, "name">, image: string, count: number, secrets: object[] = []) {
  const [first] = spec.networks ?? [];
  const labels = { ...spec.labels, "hoist.port": String(spec.port), ...(first ? { "hoist.network": first.name } : {}) };
  const r = spec.runtime;
  const restart = r?.restart;
  return {
    Name: name,
    Labels: { ...labels, "hoist.image": spec.image },
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        Labels: labels,
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        // Swarm's Command replaces the image's ENTRYPOINT; Args replaces its CMD, as
        // `docker run IMAGE ARGS...` and DockerInstances' Cmd do.
        ...(spec.command ? { Args: spec.command } : {}),
        ...(r?.entrypoint ? { Command: r.entrypoint } : {}),
        ...(r?.user !== undefined ? { User: r.user } : {}),
        ...(r?.workingDir !== undefined ? { Dir: r.workingDir } : {}),
        ...(r?.stopSignal !== undefined ? { StopSignal: r.stopSignal } : {}),
        ...(r?.readOnly ? { ReadOnly: true } : {}),
        // Swarm writes /etc/hosts lines: "IP host".
        ...(r?.extraHosts.length ? { Hosts: r.extraHosts.map((h) => `${h.slice(h.indexOf(":") + 1)} ${h.slice(0, h.indexOf(":"))}`) } : {}),
        ...(r?.capAdd.length ? { CapabilityAdd: r.capAdd } : {}),
        ...(r?.capDrop.length ? { CapabilityDrop: r.capDrop } : {}),
        ...(r?.mounts.length
          ? {
              Mounts: r.mounts.map((m): Dockerode.MountSettings =>
                // An empty Source: a volume with no name, fresh for each task.
                m.type === "anonymous"
                  ? { Type: "volume", Source: "", Target: m.target }
                  : m.type === "tmpfs"
                    ? { Type: "tmpfs", Source: "", Target: m.target, ...(m.sizeBytes ? { TmpfsOptions: { SizeBytes: m.sizeBytes, Mode: 0o1777 } } : {}) }
                    : { Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly },
              ),
            }
          : {}),
        ...(secrets.length ? { Secrets: secrets } : {}),
        // An init as PID 1 passes SIGTERM on, so a scale-down does not wait out the grace.
        Init: true,
        StopGracePeriod: r?.stopGraceMs !== undefined ? r.stopGraceMs * 1e6 : STOP_GRACE_NS,
        ...(spec.healthcheck ? { Healthcheck: dockerHealthcheck(spec.healthcheck) } : {}),
      },
      Resources: {
        Limits: {
          ...(spec.cpus ? { NanoCPUs: Math.round(spec.cpus * 1e9) } : {}),
          ...(spec.memoryBytes ? { MemoryBytes: spec.memoryBytes } : {}),
        },
      },
      RestartPolicy: restart
        ? { Condition: restart.name === "no" ? "none" : restart.name === "on-failure" ? "on-failure" : "any", ...(restart.maxRetries !== undefined ? { MaxAttempts: restart.maxRetries } : {}) }
        : { Condition: "any" },
      ...(spec.networks?.length ? { Networks: spec.networks.map((n) => ({ Target: n.name, Aliases: n.aliases })) } : {}),
      ...(r?.placement
        ? {
            Placement: {
              Constraints: r.placement.constraints,
              Preferences: r.placement.spreads.map((SpreadDescriptor) => ({ Spread: { SpreadDescriptor } })),
              ...(r.placement.maxReplicasPerNode !== undefined ? { MaxReplicas: r.placement.maxReplicasPerNode } : {}),
            },
          }
        : {}),
    },
    Mode: { Replicated: { Replicas: count } },
    EndpointSpec: { Mode: "dnsrr" },
  };
}

function swarmPolicy(p: UpdatePolicy) {
  return {
    Parallelism: p.parallelism,
    Delay: p.delayMs * 1e6,
    FailureAction: p.failureAction,
    Monitor: p.monitorMs * 1e6,
    MaxFailureRatio: p.maxFailureRatio,
    Order: p.order,
  };
}

function replicas(service: ServiceInfo): number | undefined {
  return service.Spec?.Mode?.Replicated?.Replicas;
}

function isRunning(task: TaskInfo): boolean {
  return task.DesiredState === "running" && task.Status?.State === "running" && Boolean(task.Status.ContainerStatus?.ContainerID);
}

function toInstance(service: ServiceInfo, task: TaskInfo, address: string): Instance {
  const labels = task.Spec?.ContainerSpec?.Labels ?? service.Spec?.Labels ?? {};
  // Swarm calls a task with a health check running only once the check has passed.
  const checked = (service.Spec?.TaskTemplate as { ContainerSpec?: { Healthcheck?: { Test?: string[] } } } | undefined)?.ContainerSpec?.Healthcheck?.Test?.[0];
  return {
    name: `${service.Spec?.Name ?? service.ID}.${task.Slot ?? 1}.${task.ID}`,
    image: service.Spec?.Labels?.["hoist.image"] ?? "",
    address,
    port: Number(labels["hoist.port"] ?? 0),
    running: true,
    labels,
    ...(checked && checked !== "NONE" ? { health: "healthy" as const } : {}),
  };
}

/** A slot with no running task: stopped, or how its newest task ended (a one-off's exit code). */
function ended(service: ServiceInfo, slot: number, newest: TaskInfo | undefined): Instance {
  const state = newest?.Status?.State;
  const exitCode = state === "complete" ? 0 : state === "failed" ? newest?.Status?.ContainerStatus?.ExitCode : undefined;
  return { ...stopped(service, slot), ...(exitCode !== undefined ? { exitCode } : {}) };
}

/** A place in the service with no running task: what a restore scales back up. */
function stopped(service: ServiceInfo, slot: number): Instance {
  const labels = service.Spec?.Labels ?? {};
  return { name: `${service.Spec?.Name ?? service.ID}.${slot}`, image: labels["hoist.image"] ?? "", address: "", port: Number(labels["hoist.port"] ?? 0), running: false, labels };
}

function isGone(err: unknown): boolean {
  return statusOf(err) === 404;
}

function ignoreGone(err: unknown): void {
  if (!isGone(err)) throw err;
}
