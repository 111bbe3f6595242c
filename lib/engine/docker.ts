import { setTimeout as delay } from "node:timers/promises";
import { classify, HoistError } from "../errors.ts";
import { parseImageRef, repositoryOf } from "../pipeline/image-ref.ts";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Agent as HttpsAgent } from "node:https";
import type Dockerode from "dockerode";
import type { EngineAccess } from "./access.ts";
import { dockerClient } from "./client.ts";
import { JobAgent } from "./agent.ts";
import { demux } from "./frames.ts";
import type { HealthcheckSpec } from "./instances.ts";
import { registryHostOf } from "../registry/host.ts";
import type { RegistryAuth } from "../registry/auth.ts";
import { registryFailure } from "./registry-failure.ts";
import type { Engine, JobSpec, JobState, PushResult } from "./port.ts";

const DEFAULT_SOCKET = "/var/run/docker.sock";

export interface DockerEngineOptions {
  /** A ready-made client; when given, `access` and `socketPath` are ignored. */
  docker?: Dockerode;
  /** Unix socket of the engine; default /var/run/docker.sock. */
  socketPath?: string;
  /** The engine's endpoint and credentials (unix://, tcp:// with TLS, ssh://); wins over `socketPath`. */
  access?: EngineAccess;
  /**
   * Path of the engine's socket on the engine's own host, bound into jobs that ask for
   * `mountEngineSocket`. Default: the client's socket path, else /var/run/docker.sock.
   */
  hostSocketPath?: string;
}

/** A failed engine call; `retryable` says whether trying again later can succeed. */
export class EngineError extends HoistError {
  override readonly name = "EngineError";
  readonly retryable: boolean;
  readonly status: number;
  readonly statusCode: number | undefined;

  constructor(message: string, opts: { retryable: boolean; statusCode?: number | undefined; status?: number; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.retryable = opts.retryable;
    this.statusCode = opts.statusCode;
    this.status = opts.status ?? (opts.retryable ? 503 : opts.statusCode === 404 || opts.statusCode === 409 ? opts.statusCode : 422);
  }
}

/** The Engine port on a Docker engine, through dockerode. */
export class DockerEngine implements Engine {
  readonly docker: Dockerode;
  private readonly endpoint: string;
  private readonly hostSocketPath: string;
  private readonly agent: JobAgent;

  constructor(opts: DockerEngineOptions = {}) {
    this.docker = opts.docker ?? dockerClient(clientOptions(opts));
    const modem = this.docker.modem as { socketPath?: unknown; host?: string; port?: number | string };
    const socketPath = typeof modem.socketPath === "string" ? modem.socketPath : undefined;
    this.endpoint = socketPath ?? `${modem.host}:${modem.port}`;
    this.hostSocketPath = opts.hostSocketPath ?? socketPath ?? DEFAULT_SOCKET;
    this.agent = new JobAgent({ docker: this.docker, hostSocketPath: this.hostSocketPath });
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw this.wrap(err, `inspect image ${ref}`);
    }
  }

  async ensureJob(spec: JobSpec): Promise<JobState> {
    if (spec.agent) return this.viaAgent(`start job ${spec.name} in the agent`, () => this.agent.ensure(spec));
    let lostRace = false;
    for (let attempt = 0; attempt < 100; attempt++) {
      // A container job is a container or nothing: no look into the agent for it.
      const state = (await this.inspectContainer(spec.name)) ?? { state: "missing" };
      // Created but not started: a caller died before starting it. Uploading the same
      // files again is harmless. After losing a race, the winner does it instead.
      if (state.state === "created" && !lostRace) return this.startJob(spec);
      if (state.state !== "missing") return state;
      try {
        await this.docker.createContainer({
          name: spec.name,
          Image: spec.image,
          Cmd: spec.cmd,
          Entrypoint: spec.entrypoint,
          Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
          Labels: spec.labels ?? {},
          // No AutoRemove: the exit code must stay readable after the job ends.
          HostConfig: {
            Binds: spec.mountEngineSocket ? [`${this.hostSocketPath}:/var/run/docker.sock`] : [],
            ...(spec.network ? { NetworkMode: spec.network } : {}),
          },
        });
      } catch (err) {
        if (statusOf(err) !== 409) {
          throw this.wrap(err, `create job ${spec.name} from image ${spec.image}`, "build or pull the image first");
        }
        // Another caller is creating it. The daemon reserves the name before the container
        // can be inspected (409 here, 404 there), so poll until it shows up.
        lostRace = true;
        await delay(100);
        continue;
      }
      return this.startJob(spec);
    }
    throw new EngineError(`the name of job ${spec.name} is taken but no such container appears: retry later`, {
      retryable: true,
    });
  }

  private async startJob(spec: JobSpec): Promise<JobState> {
    const container = this.docker.getContainer(spec.name);
    if (spec.files) {
      const at = spec.filesAt ?? "/";
      try {
        await container.putArchive(await spec.files(), { path: at });
      } catch (err) {
        const hint = `the directory ${at} must exist in image ${spec.image}`;
        throw this.wrap(err, `upload files of job ${spec.name} to ${at}`, hint);
      }
    }
    try {
      await container.start();
    } catch (err) {
      if (statusOf(err) !== 304) throw this.wrap(err, `start job ${spec.name}`); // 304: already started
    }
    return (await this.inspectContainer(spec.name)) ?? { state: "missing" };
  }

  async waitJob(name: string, timeoutMs: number): Promise<JobState> {
    // Aborting destroys the pending wait request, so nothing is left behind after a timeout.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      await this.docker.getContainer(name).wait({ condition: "not-running", abortSignal: abort.signal });
    } catch (err) {
      if (!abort.signal.aborted) {
        if (statusOf(err) === 404) return this.viaAgent(`wait for job ${name}`, () => this.agent.wait(name, timeoutMs));
        throw this.wrap(err, `wait for job ${name}`);
      }
    } finally {
      clearTimeout(timer);
    }
    return this.inspectJob(name);
  }

  async inspectJob(name: string): Promise<JobState> {
    return (await this.inspectContainer(name)) ?? this.viaAgent(`inspect job ${name}`, () => this.agent.inspect(name));
  }

  /** The job container's state; undefined when there is no container of that name. */
  private async inspectContainer(name: string): Promise<JobState | undefined> {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(name).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.wrap(err, `inspect job ${name}`);
    }
    const s = info.State;
    switch (s.Status) {
      case "created":
        return { state: "created" };
      case "running":
      case "paused":
      case "restarting":
        return { state: "running", startedAt: Date.parse(s.StartedAt) };
      default: // exited, dead, removing
        return {
          state: "exited",
          exitCode: s.ExitCode,
          startedAt: Date.parse(s.StartedAt),
          finishedAt: Date.parse(s.FinishedAt),
        };
    }
  }

  async jobLogs(name: string): Promise<string> {
    try {
      const raw = await this.docker.getContainer(name).logs({ stdout: true, stderr: true, follow: false });
      return demux(Buffer.isBuffer(raw) ? raw : Buffer.from(JSON.stringify(raw)));
    } catch (err) {
      if (statusOf(err) === 404) return this.viaAgent(`read the logs of job ${name}`, () => this.agent.logs(name));
      throw this.wrap(err, `read the logs of job ${name}`);
    }
  }

  async removeJob(name: string): Promise<void> {
    try {
      await this.docker.getContainer(name).remove({ force: true });
    } catch (err) {
      const status = statusOf(err);
      // 409 here means "removal already in progress": someone else is doing our job.
      if (status === 409) return;
      if (status === 404) return this.removeAgentJob(name);
      throw this.wrap(err, `remove job ${name}`);
    }
  }

  private removeAgentJob(name: string): Promise<void> {
    // Removing a job the agent does not have (or with no agent at all) is a no-op.
    return this.viaAgent(`remove job ${name} from the agent`, () => this.agent.remove(name));
  }

  /** A job that is not a container may be an agent job: same calls, same error messages. */
  private viaAgent<T>(doing: string, call: () => Promise<T>): Promise<T> {
    return call().catch((err: unknown) => {
      throw this.wrap(err, doing);
    });
  }

  async push(source: string, target: string, opts: { auth?: RegistryAuth | undefined; onProgress?: (line: string) => void } = {}): Promise<PushResult> {
    const { auth, onProgress } = opts;
    const { repo, tag } = pushTarget(target);
    try {
      await this.docker.getImage(source).tag({ repo, tag });
    } catch (err) {
      throw this.wrap(err, `tag ${source} as ${target}`, "build the image first");
    }
    let digest: string | undefined;
    try {
      // The daemon refuses a push without an X-Registry-Auth header ("Bad parameters and
      // missing X-Registry-Auth: EOF"), even to an anonymous registry: `{}` sends "e30=".
      const stream = await this.docker.getImage(repo).push({ tag, authconfig: auth ?? {} });
      for await (const line of jsonLines(stream)) {
        const msg = line as PushMessage;
        const failure = msg.errorDetail?.message ?? msg.error;
        if (failure) {
          const { message, retryable } = registryFailure("push", target, registryHostOf(target), auth, failure);
          throw new EngineError(message, { retryable });
        }
        const fromStatus = /digest: (sha256:[0-9a-f]{64})/.exec(msg.status ?? "")?.[1];
        digest = msg.aux?.Digest ?? fromStatus ?? digest;
        if (msg.status) onProgress?.([msg.id, msg.status, msg.progress].filter(Boolean).join(" "));
      }
    } catch (err) {
      if (err instanceof EngineError) throw err;
      throw this.wrap(err, `push ${target}`);
    }
    if (!digest) {
      const message = `push of ${target} ended without a digest from the registry: retry the push`;
      throw new EngineError(message, { retryable: true });
    }
    return { digest };
  }

  /**
   * Turns a dockerode/socket error into an EngineError whose message says what to do. Whether it
   * is worth retrying, and its status, are the one error tree's (`classify`): a reset, a timeout
   * or an engine that is not there (yet) is retryable; the daemon's refusals (4xx), a socket this
   * user may not use, and errors of our own are not.
   */
  private wrap(err: unknown, doing: string, hint?: string): HoistError {
    // Already classified (an engine error, an archive refused, a provider's refusal): kept as it is.
    if (err instanceof HoistError) return err;
    const kind = classify(err);
    const opts = { retryable: kind.retryable, status: kind.status, statusCode: statusOf(err), cause: err };
    const code = (err as { code?: unknown })?.code;
    if (typeof code === "string" && opts.statusCode === undefined) {
      const check = code === "EACCES" ? "may this user use its socket? (the docker group, or HOIST_BUILD_ENGINE)" : "is dockerd running?";
      return new EngineError(`cannot reach the Docker engine at ${this.endpoint} to ${doing}: ${check} (${code})`, opts);
    }
    const detail = daemonMessage(err);
    if (kind.retryable) return new EngineError(`the Docker engine failed to ${doing}: ${detail}; retry later`, opts);
    return new EngineError(`cannot ${doing}: ${detail}${hint ? ` (${hint})` : ""}`, opts);
  }
}

interface PushMessage {
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Digest?: string };
}

function clientOptions(opts: DockerEngineOptions): Dockerode.DockerOptions {
  return opts.access ? dockerClientOptions(opts.access) : { socketPath: opts.socketPath ?? DEFAULT_SOCKET };
}

/**
 * Client options for a DOCKER_HOST-style endpoint: unix://, tcp:// (TLS when given files), ssh://
 * (the engine host runs `docker system dial-stdio` for each connection). Over SSH the host's key
 * must match the fingerprint given: a client that trusts any host key hands its engine to whoever
 * answers on the way.
 */
export function dockerClientOptions(access: Pick<EngineAccess, "endpoint" | "tls" | "ssh">): Dockerode.DockerOptions {
  const { endpoint } = access;
  const url = new URL(endpoint);
  if (url.protocol === "unix:") return { socketPath: url.pathname };
  if (url.protocol === "ssh:") {
    const { ssh } = access;
    if (!ssh) throw new EngineError(`${endpoint} needs engine.ssh: {key: PRIVATE_KEY_FILE, hostKey: "SHA256:..."} (ssh-keyscan HOST | ssh-keygen -lf -)`, { retryable: false });
    const expected = ssh.hostKey;
    return {
      protocol: "ssh",
      host: url.hostname,
      port: Number(url.port || 22),
      username: decodeURIComponent(url.username) || "root",
      sshOptions: { privateKey: readFileSync(ssh.key), hostVerifier: (key: Buffer) => sshFingerprint(key) === expected },
    } as Dockerode.DockerOptions;
  }
  if (url.protocol === "tcp:" || url.protocol === "http:") {
    const { tls } = access;
    const files = tls ? { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : undefined;
    // No TLS session resumption: a TLS front that forks per connection (socat, inetd-style
    // proxies) fails a resumed session while another connection is open ("tlsv1 alert
    // internal error"), and a job's attached stream keeps one open. Connections are kept
    // alive, so this costs one full handshake per new connection.
    const agent = files ? new HttpsAgent({ ...files, keepAlive: true, maxCachedSessions: 0 }) : undefined;
    return { protocol: files ? "https" : "http", host: url.hostname, port: Number(url.port || (files ? 2376 : 2375)), ...files, ...(agent ? { agent } : {}) };
  }
  throw new EngineError(`unsupported Docker host ${endpoint}: use unix:///path, tcp://host:port or ssh://user@host`, { retryable: false });
}

/** OpenSSH's fingerprint of a host key (as `ssh-keygen -l` prints it): SHA256 of the key blob, base64 without padding. */
export function sshFingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/**
 * A failed call of an instance host (releases) as an EngineError whose message says what to
 * check: an engine that does not answer, one that is not a Swarm manager, or the daemon's own
 * answer. Server errors and an unreachable engine are worth retrying.
 */
export function instanceHostError(what: string, err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const status = statusOf(err);
  const code = (err as { code?: string }).code;
  const text = (err as Error).message.trim();
  const unreachable = code === "ECONNREFUSED" || code === "ENOENT";
  const notManager = status === 503 && /swarm/i.test(text);
  // Node names certificate problems by OpenSSL's codes (SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED...).
  const tls = /CERT|SSL|TLS|EPROTO|SIGNATURE|ISSUER/.test(code ?? "") || /alert|handshake|certificate/i.test(text);
  // ssh2's words for a host key that is not the expected one, and for a refused client key.
  const ssh = /Host denied|authentication methods failed/i.test(text);
  const message = unreachable
    ? `the Docker engine is unreachable (${text}): check the environment's engine endpoint and that dockerd runs`
    : tls
      ? `${what} failed: the TLS handshake with the Docker engine failed (${text}): check the environment's engine.tls files (ca, cert, key) against the engine's certificates`
      : ssh
        ? `${what} failed: the SSH connection to the engine host was refused (${text}): check engine.ssh.hostKey against \`ssh-keyscan HOST | ssh-keygen -lf -\` and that engine.ssh.key is in the host's authorized_keys`
        : notManager
      ? `${what} failed: the engine is not a Swarm manager (${text}): run \`docker swarm init --advertise-addr ADDRESS\` on it (on this machine, bash scripts/services.sh does)`
      : `${what} failed: ${text}`;
  // Past the cases above, the one error tree decides: a 5xx, or a socket that timed out or was
  // reset mid-call (a remote engine over a slow link), can succeed later, and a release resumes.
  const retryable = unreachable || (!notManager && !tls && !ssh && classify(err).retryable);
  return new EngineError(message, { retryable, ...(status ? { statusCode: status } : {}), cause: err });
}

/** The engine's record of image `ref`, or undefined when it has none: what an instance host checks before it starts anything. */
export async function localImage(docker: Dockerode, ref: string): Promise<Dockerode.ImageInspectInfo | undefined> {
  try {
    return await docker.getImage(ref).inspect();
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw instanceHostError(`inspect image ${ref}`, err);
  }
}

export function statusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown })?.statusCode;
  return typeof status === "number" ? status : undefined;
}

function daemonMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } })?.json;
  if (typeof json?.message === "string") return json.message;
  return err instanceof Error ? err.message.trim() : String(err);
}

/** A push target's repository and tag (no tag means latest); a digest cannot be pushed to. */
export function pushTarget(ref: string): { repo: string; tag: string } {
  const parsed = parseImageRef(ref);
  if (parsed.digest !== undefined) throw new EngineError(`cannot push to ${ref}: give a tag, not a digest`, { retryable: false });
  return { repo: repositoryOf(parsed), tag: parsed.tag ?? "latest" };
}

/** Parses a newline-delimited JSON progress stream, one object per line. */
async function* jsonLines(stream: NodeJS.ReadableStream): AsyncGenerator<unknown> {
  stream.setEncoding("utf8"); // decodes characters split across chunks
  let rest = "";
  for await (const chunk of stream) {
    rest += chunk;
    const lines = rest.split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) yield JSON.parse(line);
  }
  if (rest.trim()) yield JSON.parse(rest);
}

/** A compose healthcheck in the Engine API's terms (durations in nanoseconds). */
export function dockerHealthcheck(h: HealthcheckSpec): { Test: string[]; Interval: number; Timeout: number; Retries: number; StartPeriod: number } {
  return { Test: h.test, Interval: h.intervalMs * 1e6, Timeout: h.timeoutMs * 1e6, Retries: h.retries, StartPeriod: h.startPeriodMs * 1e6 };
}
