import type Dockerode from "dockerode";
import { dockerHealthcheck, EngineError, instanceHostError, statusOf } from "./docker.ts";
import { anonymous, ensureImage, runningDigest, type RegistryLogins } from "./images.ts";
import tar from "tar-stream";
import type { ContainerRuntime, Instance, InstanceFile, InstanceHost, InstanceSpec } from "./instances.ts";

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
      const [first, ...more] = spec.networks ?? [];
      const runtime = spec.runtime;
      await this.call(`create ${spec.name}`, () =>
        this.docker.createContainer({
          name: spec.name,
          Image: spec.image,
          Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
          ...(spec.command ? { Cmd: spec.command } : {}),
          ...(runtime?.entrypoint ? { Entrypoint: runtime.entrypoint } : {}),
          ...(runtime?.user !== undefined ? { User: runtime.user } : {}),
          ...(runtime?.workingDir !== undefined ? { WorkingDir: runtime.workingDir } : {}),
          ...(runtime?.stopSignal !== undefined ? { StopSignal: runtime.stopSignal } : {}),
          ...(runtime?.stopGraceMs !== undefined ? { StopTimeout: Math.ceil(runtime.stopGraceMs / 1000) } : {}),
          Labels: { ...spec.labels, "hoist.port": String(spec.port), ...(first ? { "hoist.network": first.name } : {}) },
          ...(spec.port ? { ExposedPorts: { [`${spec.port}/tcp`]: {} } } : {}),
          ...(spec.healthcheck ? { Healthcheck: dockerHealthcheck(spec.healthcheck) } : {}),
          HostConfig: {
            // An init as PID 1 passes SIGTERM on: an app that installs no handler (busybox
            // httpd, many shells) would otherwise ignore it and take the whole stop grace.
            Init: true,
            RestartPolicy: { Name: runtime?.restart.name ?? "unless-stopped", ...(runtime?.restart.maxRetries !== undefined ? { MaximumRetryCount: runtime.restart.maxRetries } : {}) },
            ...(spec.cpus ? { NanoCpus: Math.round(spec.cpus * 1e9) } : {}),
            ...(spec.memoryBytes ? { Memory: spec.memoryBytes } : {}),
            ...(first ? { NetworkMode: first.name } : {}),
            ...(runtime ? hostConfigOf(runtime) : {}),
          },
          ...(first ? { NetworkingConfig: { EndpointsConfig: { [first.name]: { Aliases: first.aliases } } } } : {}),
        }),
      );
      // Secrets go in as files before the first start, never through the container's settings.
      if (spec.files?.length) await this.call(`write the secrets of ${spec.name}`, async () => this.docker.getContainer(spec.name).putArchive(await filesArchive(spec.files!), { path: "/" }));
      for (const n of more)
        await this.call(`connect ${spec.name} to ${n.name}`, async () => {
          try {
            await this.docker.getNetwork(n.name).connect({ Container: spec.name, EndpointConfig: { Aliases: n.aliases } });
          } catch (err) {
            if (statusOf(err) !== 403) throw err; // already connected (a create resumed after a crash)
          }
        });
      existing = await this.inspect(spec.name);
    }
    // A one-off (restart: no, a migration) that already ran to success under this name is done:
    // a release resumed after a crash must not run it again.
    const done = existing && !existing.running && existing.exitCode === 0 && spec.runtime?.restart.name === "no";
    if (!existing?.running && !done) {
      await this.call(`start ${spec.name}`, async () => {
        try {
          await this.docker.getContainer(spec.name).start();
        } catch (err) {
          if (statusOf(err) !== 304) throw err; // already running
        }
      });
    }
    const started = await this.inspect(spec.name);
    // A one-off (restart: no, a migration) may be done already: exited 0 is its success.
    const finished = started && !started.running && started.exitCode === 0 && spec.runtime?.restart.name === "no";
    if (!started || (!finished && (!started.running || !started.address)))
      throw new EngineError(`instance ${spec.name} did not start: see \`${this.logsCommand(spec.name)}\``, { retryable: false });
    return started;
  }

  async inspect(name: string): Promise<Instance | undefined> {
    try {
      const info = await this.docker.getContainer(name).inspect();
      const labels = info.Config.Labels ?? {};
      const networks = info.NetworkSettings.Networks;
      const routed = labels["hoist.network"];
      const health = info.State.Health?.Status;
      return {
        name: info.Name.replace(/^\//, ""),
        image: info.Config.Image,
        // The router reaches it on its first app network; else on the only one it has.
        address: (routed ? networks[routed] : Object.values(networks)[0])?.IPAddress ?? "",
        port: Number(labels["hoist.port"] ?? 0),
        running: info.State.Running,
        labels,
        ...(health === "starting" || health === "healthy" || health === "unhealthy" ? { health } : {}),
        ...(!info.State.Running && info.State.FinishedAt && !info.State.FinishedAt.startsWith("0001") ? { exitCode: info.State.ExitCode } : {}),
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

  async ensureNetwork(name: string, labels: Record<string, string>): Promise<void> {
    await this.call(`create network ${name}`, async () => {
      try {
        await this.docker.getNetwork(name).inspect();
        return;
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
      try {
        await this.docker.createNetwork({ Name: name, Driver: "bridge", CheckDuplicate: true, Labels: labels });
      } catch (err) {
        if (statusOf(err) !== 409) throw err; // made meanwhile by a release resumed elsewhere
      }
    });
  }

  async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
    // Creating a volume that exists is a no-op for the engine: its data is kept.
    await this.call(`create volume ${name}`, () => this.docker.createVolume({ Name: name, Labels: labels }));
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

/** The compose settings that live in a container's HostConfig. */
function hostConfigOf(r: ContainerRuntime): Record<string, unknown> {
  const mounts = r.mounts.filter((m) => m.type !== "tmpfs");
  const tmpfs = r.mounts.filter((m) => m.type === "tmpfs");
  return {
    ...(mounts.length
      ? {
          Mounts: mounts.map((m) =>
            m.type === "anonymous" ? { Type: "volume", Target: m.target } : { Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly },
          ),
        }
      : {}),
    ...(tmpfs.length ? { Tmpfs: Object.fromEntries(tmpfs.map((m) => [m.target, m.sizeBytes ? `size=${m.sizeBytes}` : ""])) } : {}),
    ...(r.readOnly ? { ReadonlyRootfs: true } : {}),
    ...(r.extraHosts.length ? { ExtraHosts: r.extraHosts } : {}),
    ...(r.privileged ? { Privileged: true } : {}),
    ...(r.capAdd.length ? { CapAdd: r.capAdd } : {}),
    ...(r.capDrop.length ? { CapDrop: r.capDrop } : {}),
  };
}

/** The files as a tar archive rooted at `/`, with the directories they need. */
async function filesArchive(files: InstanceFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.replace(/^\/+/, "").split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!dirs.has(dir)) pack.entry({ name: `${dir}/`, type: "directory", mode: 0o755 });
      dirs.add(dir);
    }
    pack.entry({ name: parts.join("/"), mode: f.mode, uid: f.uid, gid: f.gid }, f.content);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
