import { RetryableError } from "../errors.ts";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type Dockerode from "dockerode";
import { underDirectory } from "../tar.ts";
import { demux, demuxStreams } from "./frames.ts";
import type { JobSpec, JobState } from "./port.ts";

/**
 * Jobs run as processes in one long-lived "agent" container per engine, started with
 * `docker exec`: an exec starts in tens of milliseconds where a new container takes ~0.4 s
 * (measured here), which is most of a small build. Like a container job, an agent job is
 * detached from the worker (a worker that dies leaves it running) and named: its state
 * lives in /jobs/<name>/ inside the agent, so a re-driven worker finds it again.
 *
 *   /jobs/.boot          id of the agent's current start (a job from an earlier start is dead)
 *   /jobs/<name>/up-*    an upload; the exec that takes the lock makes its upload files/
 *   /jobs/<name>/files/  the job's files; the command runs here
 *   /jobs/<name>/lock    taken by the one exec that runs the job (mkdir is atomic)
 *   /jobs/<name>/status  "running <started> <boot>" or "exited <code> <started> <finished> <boot>"
 *   /jobs/<name>/log     stdout and stderr
 *   /jobs/<name>/alive   a FIFO the runner holds open for as long as it lives: a reader gets its
 *                        end of file the moment the runner is gone (exited, killed, agent stopped)
 */

const ROOT = "/jobs";

/** What the exec's shell says on standard error when the job's files could not be unpacked. */
const UNPACK_FAILED = "hoist-unpack-failed";

/** The job's shell, run by busybox sh: $1 is the job name, the rest its command. */
const RUNNER = `
d=${ROOT}/$1; up=$2; shift 2
mkdir -p "$d" && mkdir "$d/lock" 2>/dev/null || { rm -rf "$d/$up"; exit 0; }
cat ${ROOT}/.boot > "$d/lock/boot"
mkfifo "$d/alive" && exec 9<>"$d/alive"
if [ -d "$d/$up" ]; then mv "$d/$up" "$d/files"; else mkdir -p "$d/files"; fi
echo $$ > "$d/pid"
boot=$(cat ${ROOT}/.boot); started=$(date +%s)
echo "running $started $boot" > "$d/status.tmp" && mv "$d/status.tmp" "$d/status"
cd "$d/files" && "$@" > "$d/log" 2>&1 9>&-
code=$?
rm -f "$d/pid"
echo "exited $code $started $(date +%s) $boot" > "$d/status.tmp" && mv "$d/status.tmp" "$d/status"
cat "$d/log"
echo "$code" >&2
`;

export interface AgentOptions {
  docker: Dockerode;
  /** The engine's socket on its own host, bound into the agent. */
  hostSocketPath: string;
  name?: string;
}

export class JobAgent {
  readonly name: string;

  constructor(private readonly opts: AgentOptions) {
    this.name = opts.name ?? "hoist-agent";
  }

  /** Starts under way in this process, so two callers share one upload and exec. */
  private readonly starting = new Map<string, Promise<JobState>>();
  /**
   * Jobs this process started, as their attached exec streams tell: running while the stream
   * is open, then their exit (and whole log, which the runner prints as it ends). Looks at them
   * cost no exec, and their end is known the moment it happens.
   */
  private readonly own = new Map<string, OwnJob>();

  /**
   * Unpacks the files and starts the job. A job of that name that exists already is not run
   * again: its runner's lock turns this start into a no-op (its upload is dropped) whose
   * exit reports the job's own state.
   */
  async ensure(spec: JobSpec): Promise<JobState> {
    const agent = await this.ensureAgent(spec.image);
    const started = this.starting.get(spec.name);
    if (started) return started;
    const starting = this.start(agent, spec).finally(() => this.starting.delete(spec.name));
    this.starting.set(spec.name, starting);
    return starting;
  }

  private async start(agent: Dockerode.Container, spec: JobSpec): Promise<JobState> {
    // Uploads go to a folder of their own (the upload creates it: every entry is put under
    // that path), so a second start never rewrites the files a running job reads.
    const up = `up-${randomUUID()}`;
    const upload = spec.files ? underDirectory(await spec.files(), `${spec.name}/${up}`) : undefined;
    const env = Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`);
    // The runner leads a session of its own (remove stops the job as a group), started in the
    // background of a shell that waits for it. Without that shell setsid would fork (an exec's
    // process leads its group) and exit at once, and the engine cuts an exec's streams 2 s after
    // its process ends (measured): a longer job's end would never reach this stream.
    // The files come in on the exec's standard input, unpacked before the runner starts: the
    // engine's archive upload takes ~150 ms more (measured), a sixth of a small build.
    const shell = upload ? `tar -x -C ${ROOT} || { echo ${UNPACK_FAILED} >&2; exit 1; }; setsid "$@" </dev/null & wait` : 'setsid "$@" & wait';
    const exec = await agent.exec({
      Cmd: ["sh", "-c", shell, "sh", "sh", "-c", RUNNER, "job", spec.name, up, ...spec.cmd],
      Env: env,
      AttachStdin: upload !== undefined,
      AttachStdout: true,
      AttachStderr: true,
    });
    // Attached, so this process learns of the exit at once, and gets the log with it: the
    // runner prints it only after recording the exit, so while the job runs it writes
    // nothing here and goes on unharmed if this process dies and the stream closes.
    const stream = (await exec.start(upload ? { hijack: true, stdin: true } : {})) as NodeJS.ReadWriteStream & { destroy?: () => void };
    if (upload) {
      const send = async (chunk: Buffer) => {
        if (!stream.write(chunk)) await new Promise((resolve) => stream.once("drain", resolve));
      };
      try {
        for await (const chunk of upload) await send(chunk as Buffer);
        // The engine keeps an exec's stream open until its input ends, even past the process's
        // own end: the input is closed here, the output still comes (a TLS front that closes
        // both ways on a half-close only loses that news: the job's record still tells).
        stream.end();
      } catch (err) {
        // A refused archive (or a source that failed): the exec loses its input, and tar with it.
        stream.destroy?.();
        throw err;
      }
    }
    // The job does not need this stream: it must not keep a stopping process alive.
    (stream as { unref?: () => void }).unref?.();
    const startedAt = Date.now();
    const job: OwnJob = { startedAt, exit: collect(stream).then((output) => this.ended(spec.name, job, output)) };
    this.own.set(spec.name, job);
    // Kept a while for the worker's last looks, then forgotten (the job's files still tell).
    const forget = () => setTimeout(() => this.own.get(spec.name) === job && this.own.delete(spec.name), 60_000).unref();
    job.exit.then(forget, forget);
    return { state: "running", startedAt };
  }

  /** A job's end from its runner's output: the runner prints its log, then the job's exit code on stderr. */
  private async ended(name: string, job: OwnJob, output: Buffer): Promise<JobState> {
    const { stdout, stderr } = demuxStreams(output);
    if (stderr.includes(UNPACK_FAILED)) {
      job.log = `hoist: unpacking the job's files failed: ${stderr.replace(UNPACK_FAILED, "").trim()}\n`;
      job.settled = { state: "exited", exitCode: 1, startedAt: job.startedAt, finishedAt: Date.now() };
      return job.settled;
    }
    const code = Number.parseInt(stderr.trim(), 10);
    if (Number.isNaN(code)) {
      // No code: another exec held the lock (the job is not this process's to follow), or the
      // runner was cut short. The record tells, from now on.
      if (this.own.get(name) === job) this.own.delete(name);
      return this.record(name);
    }
    job.log = stdout;
    job.settled = { state: "exited", exitCode: code, startedAt: job.startedAt, finishedAt: Date.now() };
    return job.settled;
  }

  async inspect(name: string): Promise<JobState> {
    const job = this.own.get(name);
    if (job) return job.settled ?? { state: "running", startedAt: job.startedAt };
    return this.record(name);
  }

  /** The job's state as its files in the agent tell it. */
  private async record(name: string): Promise<JobState> {
    const out = await run(this.container(), ["sh", "-c", inspectScript(name)]);
    return parseRecord(out);
  }

  async wait(name: string, timeoutMs: number): Promise<JobState> {
    const deadline = Date.now() + timeoutMs;
    const job = this.own.get(name);
    if (job) {
      const stop = new AbortController();
      const timeout = sleep(timeoutMs, undefined, { signal: stop.signal }).catch(() => undefined);
      const state = await Promise.race([job.exit, timeout]).finally(() => stop.abort());
      if (!state) return { state: "running", startedAt: job.startedAt };
      if (state.state === "exited" || state.state === "missing") return state;
    }
    // Started by another process (or one that is gone): wait in the agent on the runner's FIFO.
    for (;;) {
      const left = Math.max(0, deadline - Date.now());
      await run(this.container(), ["sh", "-c", waitScript(name, Math.ceil(left / 1000))], left);
      const state = await this.record(name);
      if (state.state === "exited" || state.state === "missing" || Date.now() >= deadline) return state;
      // Running, and the runner was gone before the wait began (it only just ended), or the
      // runner has not begun yet: look again shortly.
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
  }

  async logs(name: string): Promise<string> {
    const final = this.own.get(name)?.log;
    if (final !== undefined) return final;
    const out = await run(this.container(), ["cat", `${ROOT}/${name}/log`]);
    return out.code === 0 ? out.text : "";
  }

  /** Stops the job's process group if it still runs and deletes its directory. */
  async remove(name: string): Promise<void> {
    this.own.delete(name);
    const dir = `${ROOT}/${name}`;
    // The pid file exists only while the job runs (the runner deletes it when the command ends).
    await run(this.container(), ["sh", "-c", `p=$(cat ${dir}/pid 2>/dev/null) && kill -TERM -"$p" 2>/dev/null; rm -rf ${dir}`]);
  }

  private container(): Dockerode.Container {
    return this.opts.docker.getContainer(this.name);
  }

  /** Starts the agent from `image` unless it runs (an agent of an older image is kept). */
  private async ensureAgent(image: string): Promise<Dockerode.Container> {
    const container = this.opts.docker.getContainer(this.name);
    for (let attempt = 0; attempt < 50; attempt++) {
      const info = await container.inspect().catch((err: { statusCode?: number }) => {
        if (err.statusCode === 404) return undefined;
        throw err;
      });
      if (info?.State.Running) return container;
      try {
        if (!info)
          await this.opts.docker.createContainer({
            name: this.name,
            Image: image,
            Cmd: ["sh", "-c", `mkdir -p ${ROOT} && cat /proc/sys/kernel/random/uuid > ${ROOT}/.boot && exec sleep 2147483647`],
            Labels: { "hoist.kind": "agent" },
            HostConfig: {
              // An init reaps the job runners (sleep, as PID 1, would leave them as zombies).
              Init: true,
              Binds: [`${this.opts.hostSocketPath}:/var/run/docker.sock`],
              NetworkMode: "none",
              RestartPolicy: { Name: "unless-stopped" },
            },
          });
        await container.start();
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        // 409: another caller is creating it; 304: already started. Look again.
        if (status !== 409 && status !== 304) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new RetryableError(`the job agent ${this.name} does not come up: see \`docker logs ${this.name}\``);
  }


}

interface OwnJob {
  startedAt: number;
  /** Settles when the attached stream ends: the job's exit, or its record when the stream had none. */
  exit: Promise<JobState>;
  settled?: JobState;
  log?: string;
}

/**
 * One exec answers all: 3 no such job, 4 files but not started, else the status line (or
 * "locked <boot>" for a runner between its lock and its first status) and the boot id.
 */
function inspectScript(name: string): string {
  const dir = `${ROOT}/${name}`;
  return `test -d ${dir} || exit 3; cat ${dir}/status 2>/dev/null || { test -d ${dir}/lock || exit 4; echo "locked $(cat ${dir}/lock/boot 2>/dev/null)"; }; cat ${ROOT}/.boot`;
}

/**
 * Blocks while the job's runner lives (at most `seconds`): reading its FIFO ends when the last
 * writer, the runner, is gone. Only a runner that says it runs is waited on: a FIFO without
 * writer would block the open itself.
 */
function waitScript(name: string, seconds: number): string {
  const dir = `${ROOT}/${name}`;
  return `read -r word rest < ${dir}/status 2>/dev/null && [ "$word" = running ] && [ -p ${dir}/alive ] && timeout -s KILL ${seconds} cat ${dir}/alive > /dev/null 2>&1`;
}

function parseRecord(out: { code: number | undefined; text: string }): JobState {
  if (out.code === 3 || out.code === undefined) return { state: "missing" };
  if (out.code === 4) return { state: "created" };
  const [statusLine = "", currentBoot = ""] = out.text.split("\n");
  const [word, ...rest] = statusLine.trim().split(" ");
  if (word === "locked") {
    // A runner of an earlier agent start took the lock and died before it began: dead.
    const [boot] = rest;
    if (boot && boot !== currentBoot.trim()) return { state: "exited", exitCode: 137, startedAt: Date.now(), finishedAt: Date.now() };
    return { state: "running", startedAt: Date.now() };
  }
  if (word === "exited") {
    const [code, started, finished] = rest.map(Number);
    return { state: "exited", exitCode: code ?? 1, startedAt: (started ?? 0) * 1000, finishedAt: (finished ?? 0) * 1000 };
  }
  const [started, boot] = rest;
  const startedAt = Number(started) * 1000;
  // Its agent restarted since it began: the process is gone and will never report.
  if (boot !== currentBoot.trim()) return { state: "exited", exitCode: 137, startedAt, finishedAt: startedAt };
  return { state: "running", startedAt };
}

/** The whole of an exec's attached output, once it ends. */
function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on("data", (d: Buffer) => parts.push(d));
    stream.on("end", () => resolve(Buffer.concat(parts)));
    // Destroyed (a wait cut short): what came so far.
    stream.on("close", () => resolve(Buffer.concat(parts)));
    stream.on("error", reject);
  });
}

/**
 * Runs a short command in the agent and collects its stdout. Exec answers in milliseconds;
 * the archive endpoints are slower (~70 ms) and a HEAD on one never ended (measured).
 * `code` is undefined when the agent itself does not exist. With `timeoutMs`, a command still
 * running then is cut loose (it must bound itself in the agent) and its code is not read.
 */
async function run(agent: Dockerode.Container, cmd: string[], timeoutMs?: number): Promise<{ code: number | undefined; text: string }> {
  let exec: Dockerode.Exec;
  try {
    exec = await agent.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: false });
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    // 404: no agent; 409: the agent is not running. Either way it holds no job.
    if (status === 404 || status === 409) return { code: undefined, text: "" };
    throw err;
  }
  const stream = await exec.start({});
  let cut = false;
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => ((cut = true), (stream as { destroy?: () => void }).destroy?.()), timeoutMs);
  const output = await collect(stream).finally(() => clearTimeout(timer));
  return { code: cut ? undefined : ((await exec.inspect()).ExitCode ?? undefined), text: demux(output) };
}
