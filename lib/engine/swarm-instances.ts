import { setTimeout as delay } from "node:timers/promises";
import type Dockerode from "dockerode";
import { EngineError, instanceHostError, statusOf } from "./docker.ts";
import type { Instance, InstanceHost, InstanceSpec } from "./instances.ts";

export interface SwarmInstancesOptions {
  /** How long `start` waits for a running task. Default 60 s. */
  startTimeoutMs?: number;
  /** How long `stop` and `remove` wait for the task's container to go. Default 30 s. */
  stopTimeoutMs?: number;
  pollMs?: number;
}

const STOP_GRACE_NS = 10e9;
const ACTIVE_TASK_STATES = new Set(["new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"]);

/** What a service listing or inspection gives; the dockerode types leave Spec optional. */
type ServiceInfo = Dockerode.Service;

interface TaskInfo {
  ID: string;
  DesiredState?: string;
  CreatedAt?: string;
  Status?: { State?: string; Err?: string; Message?: string; Timestamp?: string; ContainerStatus?: { ContainerID?: string } };
}

/**
 * Service instances as Swarm services of one replica each, named like the instance. The
 * router (HAProxy on this host) reaches each at its task container's address:
 *
 * - not through the ingress routing mesh, which does not route on these hosts (no IPVS in
 *   the kernel); so services publish no ports, and use DNS round-robin endpoints: a virtual
 *   IP would need IPVS too, and nothing here uses one;
 * - not through ports published in host mode, which collide between an old and a new
 *   instance of one release on one node;
 * - but on the engine's default bridge, as DockerInstances: a service that names no network
 *   runs its task there, at an address the host routes to. Swarm also skips its hard-coded
 *   2 s "gossip converge" pause before stopping such a task (it has no service binding to
 *   withdraw), so a scale-down takes about 1.5 s instead of about 3.5 s. (An overlay
 *   network's task address is not reachable from the host at all; its second interface on
 *   `docker_gwbridge` is, but that is left for when services must call each other by name.)
 *
 * Such an address is reachable only from the node running the task: this is for a
 * router next to a single-node swarm. Stopping scales the service to 0: Swarm then deletes
 * the task and its container but keeps the service, so scaling back to 1 brings the same
 * image and settings back within seconds (in a new container, at a new address).
 */
export class SwarmInstances implements InstanceHost {
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly docker: Dockerode,
    opts: SwarmInstancesOptions = {},
  ) {
    this.startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 200;
  }

  async start(spec: InstanceSpec): Promise<Instance> {
    let service = await this.service(spec.name);
    if (!service) {
      const image = await this.pinnedImage(spec.image);
      const labels = { ...spec.labels, "hoist.port": String(spec.port) };
      try {
        // The two-argument form: with one argument dockerode also sends the whole spec
        // (environment included) as the X-Registry-Auth header, which Swarm then stores.
        await this.docker.createService(NO_AUTH, {
          Name: spec.name,
          Labels: { ...labels, "hoist.image": spec.image },
          TaskTemplate: {
            ContainerSpec: {
              Image: image,
              Labels: labels,
              Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
              // Swarm's Command replaces the image's ENTRYPOINT; Args replaces its CMD, as
              // `docker run IMAGE ARGS...` and DockerInstances' Cmd do.
              ...(spec.command ? { Args: spec.command } : {}),
              // An init as PID 1 passes SIGTERM on, so a scale-down does not wait out the grace.
              Init: true,
              StopGracePeriod: STOP_GRACE_NS,
            },
            Resources: {
              Limits: {
                ...(spec.cpus ? { NanoCPUs: Math.round(spec.cpus * 1e9) } : {}),
                ...(spec.memoryBytes ? { MemoryBytes: spec.memoryBytes } : {}),
              },
            },
            RestartPolicy: { Condition: "any" },
          },
          Mode: { Replicated: { Replicas: 1 } },
          EndpointSpec: { Mode: "dnsrr" },
        });
      } catch (err) {
        // 409: a concurrent start of the same name created it first; use that one.
        if (statusOf(err) !== 409) throw instanceHostError(`create service ${spec.name}`, err);
      }
      service = await this.service(spec.name);
      if (!service) throw new EngineError(`service ${spec.name} vanished right after it was created: was it removed concurrently?`, { retryable: true });
    } else if (replicas(service) === 0) {
      service = await this.scale(spec.name, 1);
    }
    return this.waitRunning(service);
  }

  async inspect(name: string): Promise<Instance | undefined> {
    const service = await this.service(name);
    return service ? this.describe(service) : undefined;
  }

  async list(labels: Record<string, string>): Promise<Instance[]> {
    const services = await this.call("list services", () =>
      this.docker.listServices({ filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } }),
    );
    return Promise.all(services.map((s) => this.describe(s)));
  }

  async stop(name: string): Promise<void> {
    const service = await this.service(name);
    if (!service) return;
    if (replicas(service) !== 0) await this.scale(name, 0).catch((err: unknown) => ignoreGone(err));
    await this.waitGone(service, `stop ${name}`, true);
  }

  async remove(name: string): Promise<void> {
    const service = await this.service(name);
    if (!service) return;
    try {
      await this.docker.getService(service.ID).remove();
    } catch (err) {
      ignoreGone(instanceHostError(`remove service ${name}`, err));
    }
    // Swarm deletes the containers after the service, asynchronously. Waiting for them makes
    // "removed" mean removed, as with DockerInstances; but the service is gone either way, so
    // a slow engine is no reason to fail a rollback that has already succeeded.
    await this.waitGone(service, `remove ${name}`, false);
  }

  logsCommand(name: string): string {
    return `docker service logs ${name}`;
  }

  async imageExists(ref: string): Promise<boolean> {
    return (await this.localImage(ref)) !== undefined;
  }

  /**
   * The reference the service runs `ref` by, so that Swarm uses the image on this engine and
   * never pulls. With a tag, Swarm's agent first tries a registry pull (for a local-only
   * name that means Docker Hub, where anyone could publish that name) and only falls back to
   * the local image when the pull fails; it skips the pull for an image ID, and for a
   * repo@digest reference that exists locally. A pushed image runs by its registry digest
   * (other nodes could pull it); a local-only one by its ID. Either also pins the service:
   * a tag moved later does not change what a scale back to 1 runs.
   */
  private async pinnedImage(ref: string): Promise<string> {
    const image = await this.localImage(ref);
    if (!image)
      throw new EngineError(`image ${ref} does not exist on the engine: build and push it first, or check the name`, { retryable: false });
    if (ref.includes("@")) return ref;
    const repo = ref.replace(/:[^/:]*$/, "");
    return (image.RepoDigests ?? []).find((d) => d.startsWith(`${repo}@`)) ?? image.Id;
  }

  private async localImage(ref: string): Promise<Dockerode.ImageInspectInfo | undefined> {
    try {
      return await this.docker.getImage(ref).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw instanceHostError(`inspect image ${ref}`, err);
    }
  }

  private async service(name: string): Promise<ServiceInfo | undefined> {
    try {
      const service = (await this.docker.getService(name).inspect()) as ServiceInfo;
      // The API also matches ID prefixes: only an exact name is this instance.
      return service.Spec?.Name === name ? service : undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw instanceHostError(`inspect service ${name}`, err);
    }
  }

  /** Sets the replica count, retrying when another update bumped the service's version first. */
  private async scale(name: string, count: number): Promise<ServiceInfo> {
    for (let attempt = 1; ; attempt++) {
      const service = await this.service(name);
      if (!service?.Spec) throw new EngineError(`service ${name} is gone`, { retryable: false, statusCode: 404 });
      try {
        await this.docker.getService(service.ID).update({
          _query: { version: service.Version?.Index },
          _body: { ...service.Spec, Mode: { Replicated: { Replicas: count } } },
        });
        return (await this.service(name)) ?? service;
      } catch (err) {
        const outOfSequence = /out of sequence/i.test((err as Error).message);
        if (!outOfSequence || attempt >= 5) throw instanceHostError(`scale service ${name} to ${count}`, err);
      }
    }
  }

  private async tasks(serviceId: string): Promise<TaskInfo[]> {
    const tasks = (await this.call("list tasks", () => this.docker.listTasks({ filters: { service: [serviceId] } }))) as TaskInfo[];
    // Newest first: a service keeps the tasks it scaled away as history.
    return tasks.sort((a, b) => (b.CreatedAt ?? "").localeCompare(a.CreatedAt ?? ""));
  }

  private runningTask(tasks: TaskInfo[]): TaskInfo | undefined {
    return tasks.find((t) => t.DesiredState === "running" && t.Status?.State === "running" && t.Status.ContainerStatus?.ContainerID);
  }

  private async describe(service: ServiceInfo): Promise<Instance> {
    const task = this.runningTask(await this.tasks(service.ID));
    const address = task ? await this.address(task) : undefined;
    return toInstance(service, address);
  }

  private async waitRunning(service: ServiceInfo): Promise<Instance> {
    const name = service.Spec?.Name ?? service.ID;
    const deadline = Date.now() + this.startTimeoutMs;
    let last = "no task yet";
    for (;;) {
      const tasks = await this.tasks(service.ID);
      const task = this.runningTask(tasks);
      const address = task ? await this.address(task) : undefined;
      if (address) return toInstance(service, address);
      const newest = tasks[0];
      if (newest?.Status) last = `task ${newest.Status.State}${newest.Status.Err ? `: ${newest.Status.Err}` : ""}`;
      if (Date.now() >= deadline)
        throw new EngineError(
          `service ${name} has no running task after ${Math.round(this.startTimeoutMs / 1000)} s (last: ${last}): see \`docker service ps --no-trunc ${name}\``,
          { retryable: false },
        );
      await delay(this.pollMs);
    }
  }

  /**
   * Waits until no task of the service is active, and (for a removal) no container of it is
   * left. On the deadline, `strict` fails; otherwise it returns: Swarm converges by itself.
   */
  private async waitGone(service: ServiceInfo, what: string, strict: boolean): Promise<void> {
    const deadline = Date.now() + this.stopTimeoutMs;
    for (;;) {
      const busy = strict
        ? (await this.tasks(service.ID).catch((err: unknown) => (isGone(err) ? [] : Promise.reject(err)))).filter((t) => ACTIVE_TASK_STATES.has(t.Status?.State ?? ""))
        : await this.call("list containers", () => this.docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.id=${service.ID}`] } }));
      if (busy.length === 0) return;
      if (Date.now() >= deadline) {
        if (!strict) return;
        throw new EngineError(`${what}: its task is still active after ${Math.round(this.stopTimeoutMs / 1000)} s: see \`docker service ps --no-trunc ${service.Spec?.Name ?? service.ID}\``, {
          retryable: true,
        });
      }
      await delay(this.pollMs);
    }
  }

  /** The task container's address on the default bridge, or undefined while it has none yet. */
  private async address(task: TaskInfo): Promise<string | undefined> {
    const containerId = task.Status?.ContainerStatus?.ContainerID;
    if (!containerId) return undefined;
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      return info.NetworkSettings.Networks.bridge?.IPAddress || undefined;
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

function replicas(service: ServiceInfo): number | undefined {
  return service.Spec?.Mode?.Replicated?.Replicas;
}

function toInstance(service: ServiceInfo, address: string | undefined): Instance {
  const labels = service.Spec?.Labels ?? {};
  const container = service.Spec?.TaskTemplate && "ContainerSpec" in service.Spec.TaskTemplate ? service.Spec.TaskTemplate.ContainerSpec : undefined;
  return {
    name: service.Spec?.Name ?? service.ID,
    image: labels["hoist.image"] ?? container?.Image ?? "",
    address: address ?? "",
    port: Number(labels["hoist.port"] ?? 0),
    running: address !== undefined,
    labels,
  };
}

function isGone(err: unknown): boolean {
  return statusOf(err) === 404;
}

function ignoreGone(err: unknown): void {
  if (!isGone(err)) throw err;
}
