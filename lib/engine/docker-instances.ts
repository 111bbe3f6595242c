import type Dockerode from "dockerode";
import { dockerHealthcheck, EngineError, instanceHostError, statusOf } from "./docker.ts";
import { anonymous, ensureImage, runningDigest, type RegistryLogins } from "./images.ts";
import type { Instance, InstanceHost, InstanceSpec } from "./instances.ts";

const STOP_GRACE_SEC = 10;

/**
 * Service instances as containers on one Docker host, on its default bridge: the router
 * reaches them at their container address (the Swarm ingress mesh does not route on these
 * hosts, and a published host port would collide between old and new instances).
 */
export class DockerInstances implements InstanceHost {
  constructor(
    private readonly docker: Dockerode,
    /** Logins for pulling an image this engine does not hold. */
    private readonly logins: RegistryLogins = anonymous,
  ) {}

  instanceName(set: string, index: number): string {
    return `${set}-${index}`;
  }

  async start(spec: InstanceSpec): Promise<Instance> {
    let existing = await this.inspect(spec.name);
    if (!existing) {
      await this.ensureImage(spec.image);
      await this.call(`create ${spec.name}`, () =>
        this.docker.createContainer({
          name: spec.name,
          Image: spec.image,
          Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
          ...(spec.command ? { Cmd: spec.command } : {}),
          Labels: { ...spec.labels, "hoist.port": String(spec.port) },
          ExposedPorts: { [`${spec.port}/tcp`]: {} },
          ...(spec.healthcheck ? { Healthcheck: dockerHealthcheck(spec.healthcheck) } : {}),
          HostConfig: {
            // An init as PID 1 passes SIGTERM on: an app that installs no handler (busybox
            // httpd, many shells) would otherwise ignore it and take the whole stop grace.
            Init: true,
            RestartPolicy: { Name: "unless-stopped" },
            ...(spec.cpus ? { NanoCpus: Math.round(spec.cpus * 1e9) } : {}),
            ...(spec.memoryBytes ? { Memory: spec.memoryBytes } : {}),
          },
        }),
      );
      existing = await this.inspect(spec.name);
    }
    if (!existing?.running) {
      await this.call(`start ${spec.name}`, async () => {
        try {
          await this.docker.getContainer(spec.name).start();
        } catch (err) {
          if (statusOf(err) !== 304) throw err; // already running
        }
      });
    }
    const started = await this.inspect(spec.name);
    if (!started?.running || !started.address) throw new EngineError(`instance ${spec.name} did not start: see \`${this.logsCommand(spec.name)}\``, { retryable: false });
    return started;
  }

  async inspect(name: string): Promise<Instance | undefined> {
    try {
      const info = await this.docker.getContainer(name).inspect();
      const labels = info.Config.Labels ?? {};
      return {
        name: info.Name.replace(/^\//, ""),
        image: info.Config.Image,
        address: Object.values(info.NetworkSettings.Networks)[0]?.IPAddress ?? "",
        port: Number(labels["hoist.port"] ?? 0),
        running: info.State.Running,
        labels,
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw instanceHostError(`inspect ${name}`, err);
    }
  }

  async list(labels: Record<string, string>): Promise<Instance[]> {
    const found = await this.call("list instances", () =>
      this.docker.listContainers({ all: true, filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } }),
    );
    const instances = await Promise.all(found.map((c) => this.inspect(c.Id)));
    return instances.filter((i): i is Instance => i !== undefined);
  }

  async stop(name: string): Promise<void> {
    try {
      await this.docker.getContainer(name).stop({ t: STOP_GRACE_SEC });
    } catch (err) {
      const code = statusOf(err);
      if (code !== 304 && code !== 404) throw instanceHostError(`stop ${name}`, err);
    }
  }

  async remove(name: string): Promise<void> {
    try {
      await this.docker.getContainer(name).remove({ force: true });
    } catch (err) {
      const code = statusOf(err);
      if (code !== 404 && code !== 409) throw instanceHostError(`remove ${name}`, err);
    }
  }

  logsCommand(name: string): string {
    return `docker logs ${name}`;
  }

  async ensureImage(ref: string): Promise<void> {
    await ensureImage(this.docker, ref, this.logins);
  }

  async runningDigest(name: string, image: string): Promise<string | undefined> {
    return runningDigest(this.docker, name, image);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw instanceHostError(what, err);
    }
  }
}
