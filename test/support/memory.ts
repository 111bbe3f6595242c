import { Readable } from "node:stream";
import type { Clock } from "../../lib/clock.ts";
import type { Engine, JobSpec, JobState, PushResult } from "../../lib/engine/port.ts";
import { inFlight } from "../../lib/pipeline/machine.ts";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import type { Queue, WakeUp } from "../../lib/queue/port.ts";
import { NotFoundError } from "../../lib/errors.ts";
import type { RegistryAccess } from "../../lib/registry/access.ts";
import type { RegistryAuth } from "../../lib/registry/auth.ts";
import type { ResolvedRef, SourceReader } from "../../lib/scm/port.ts";
import type { Delivery, DeliveryStore, StoredDelivery } from "../../lib/store/deliveries.ts";
import {
  branchPrefix,
  type NewSchedule,
  type RegisteredSchedule,
  type Registration,
  type RegistrationResult,
  type ScheduleStore,
  type StoredSchedule,
} from "../../lib/store/schedules.ts";
import type { Lease, LogChunk, RunFilter, RunStore, StoredRun } from "../../lib/store/port.ts";
import { RecordTooLargeError } from "../../lib/store/too-large.ts";

/**
 * In-memory stand-ins for the ports lib/runs drives, for unit tests of its use cases. They keep
 * the contracts the real adapters are tested for against dynalite, local-aws-sqs and Docker
 * (conditional writes on a version, leases on unfinished runs, named idempotent jobs); records
 * are copied in and out, as a real store serialises them.
 */

export class ManualClock implements Clock {
  constructor(public t = 1_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

const copy = <T>(v: T): T => structuredClone(v);

export class MemoryRunStore implements RunStore {
  readonly runs = new Map<string, StoredRun>();
  readonly logs = new Map<string, LogChunk>();
  saves = 0;

  /** `maxBytes`: the item limit, as the table enforces it (refused before anything is written). */
  constructor(private readonly maxBytes = Infinity) {}

  async createRun(run: Run, lease: Lease): Promise<"created" | "exists"> {
    if (this.runs.has(run.id)) return "exists";
    this.runs.set(run.id, this.stored(run, 1, lease));
    return "created";
  }
  async getRun(id: string): Promise<StoredRun | undefined> {
    const s = this.runs.get(id);
    return s && copy(s);
  }
  async saveRun(run: Run, expected: number, lease: Lease | undefined): Promise<StoredRun | undefined> {
    const bytes = Buffer.byteLength(JSON.stringify(run));
    if (bytes > this.maxBytes) throw new RecordTooLargeError(`run ${run.id} is ${bytes} bytes, over the table's ${this.maxBytes}`, { bytes });
    const now = this.runs.get(run.id);
    if (!now || now.version !== expected) return undefined;
    this.saves++;
    const stored = this.stored(run, expected + 1, lease);
    this.runs.set(run.id, stored);
    return copy(stored);
  }
  async listRuns(_filter: RunFilter): Promise<{ runs: Run[] }> {
    return { runs: [...this.runs.values()].map((s) => copy(s.run)) };
  }
  async expiredRuns(now: number, limit: number): Promise<StoredRun[]> {
    return [...this.runs.values()].filter((s) => inFlight(s.run) && (s.leaseUntil ?? 0) < now).slice(0, limit).map(copy);
  }
  async putLog(runId: string, chunk: LogChunk): Promise<void> {
    this.logs.set(`${runId}#${chunk.stage}#${chunk.offset}`, copy(chunk));
  }
  async readLogs(runId: string, stage?: number): Promise<LogChunk[]> {
    return [...this.logs.entries()]
      .filter(([k, c]) => k.startsWith(`${runId}#`) && (stage === undefined || c.stage === stage))
      .map(([, c]) => copy(c))
      .sort((a, b) => a.stage - b.stage || a.offset - b.offset);
  }
  /** The text a stage's log holds. */
  async logText(runId: string, stage: number): Promise<string> {
    return (await this.readLogs(runId, stage)).map((c) => c.text).join("");
  }
  private stored(run: Run, version: number, lease: Lease | undefined): StoredRun {
    // As on the table: only a run in flight carries a lease (an unleased one is due at once).
    return copy({ run, version, ...(inFlight(run) ? { leaseUntil: lease?.until ?? 0, ...(lease?.owner ? { leaseOwner: lease.owner } : {}) } : {}) });
  }
}

export class MemoryDeliveryStore implements DeliveryStore {
  readonly items = new Map<string, StoredDelivery & { dueAt?: number }>();

  async createDelivery(delivery: Delivery, dueAt: number): Promise<"created" | "exists"> {
    if (this.items.has(delivery.id)) return "exists";
    this.items.set(delivery.id, copy({ delivery, version: 1, dueAt }));
    return "created";
  }
  async getDelivery(id: string): Promise<StoredDelivery | undefined> {
    const d = this.items.get(id);
    return d && copy({ delivery: d.delivery, version: d.version });
  }
  async saveDelivery(delivery: Delivery, expected: number, dueAt?: number): Promise<StoredDelivery | undefined> {
    const now = this.items.get(delivery.id);
    if (!now || now.version !== expected) return undefined;
    this.items.set(delivery.id, copy({ delivery, version: expected + 1, dueAt }));
    return copy({ delivery, version: expected + 1 });
  }
  async dueDeliveries(now: number, limit: number): Promise<StoredDelivery[]> {
    return [...this.items.values()]
      .filter((d) => d.delivery.status === "pending" && (d.dueAt ?? 0) < now)
      .slice(0, limit)
      .map((d) => copy({ delivery: d.delivery, version: d.version }));
  }
}

/** The schedule registry, keyed as on the table: repository, then `<branch>:<pipeline>:<digest>`. */
export class MemoryScheduleStore implements ScheduleStore {
  readonly items = new Map<string, StoredSchedule>();
  private readonly registered = new Map<string, number>();

  async replaceSchedules(reg: Registration, schedules: readonly NewSchedule[]): Promise<RegistrationResult | "stale"> {
    const repo = `${reg.repo.provider}:${reg.repo.fullName}`;
    const marker = `${repo}\n${reg.branch}`;
    if ((this.registered.get(marker) ?? -Infinity) > reg.receivedAt) return "stale";
    this.registered.set(marker, reg.receivedAt);
    const result: RegistrationResult = { added: [], updated: [], kept: [], removed: [] };
    const wanted = new Map(schedules.map((s) => [s.id, s]));
    for (const [key, stored] of this.items)
      if (key.startsWith(`${repo}\n${branchPrefix(reg.branch)}`) && !wanted.has(stored.record.id)) {
        this.items.delete(key);
        result.removed.push(stored.record.id);
      }
    for (const { id, pipeline, schedule } of wanted.values()) {
      const key = `${repo}\n${id}`;
      const stored = this.items.get(key);
      if (!stored) {
        const record: RegisteredSchedule = { id, repo: reg.repo, branch: reg.branch, pipeline, schedule, sha: reg.sha, registeredAt: reg.receivedAt };
        this.items.set(key, copy({ record, version: 1, dueAt: reg.receivedAt }));
        result.added.push(id);
      } else if (JSON.stringify(stored.record.schedule) === JSON.stringify(schedule)) result.kept.push(id);
      else {
        const record = { ...stored.record, schedule, sha: reg.sha, registeredAt: reg.receivedAt };
        this.items.set(key, copy({ ...stored, record, version: stored.version + 1 }));
        result.updated.push(id);
      }
    }
    return result;
  }
  async listSchedules(now: number, limit: number): Promise<StoredSchedule[]> {
    return [...this.items.values()]
      .filter((s) => s.dueAt !== undefined && s.dueAt <= now)
      .sort((a, b) => a.dueAt! - b.dueAt!)
      .slice(0, limit)
      .map(copy);
  }
  async saveSchedule(record: RegisteredSchedule, expected: number, dueAt: number | undefined): Promise<StoredSchedule | undefined> {
    const key = `${record.repo.provider}:${record.repo.fullName}\n${record.id}`;
    const now = this.items.get(key);
    if (!now || now.version !== expected) return undefined;
    const stored: StoredSchedule = { record, version: expected + 1, ...(dueAt !== undefined ? { dueAt } : {}) };
    this.items.set(key, copy(stored));
    return copy(stored);
  }
  /** The one schedule registered with `id`. */
  get(id: string): StoredSchedule | undefined {
    return [...this.items.values()].find((s) => s.record.id === id);
  }
}

export class MemoryQueue implements Queue {
  readonly sent: { message: WakeUp; delaySec: number }[] = [];
  async send(message: WakeUp, delaySec = 0): Promise<void> {
    this.sent.push({ message: copy(message), delaySec });
  }
}

/** How a fake job ends: its exit code and output, or an error thrown when it is started. */
export interface JobScript {
  exitCode?: number;
  output?: string;
  /** Stays running until `finish(name)`. */
  hold?: boolean;
  throws?: () => unknown;
}

/**
 * An engine whose jobs end as `script(spec)` says. Named jobs are idempotent as on Docker:
 * ensuring a job that exists returns its state and starts nothing.
 */
export class FakeEngine implements Engine {
  readonly jobs = new Map<string, { spec: JobSpec; state: JobState; output: string }>();
  readonly images = new Set<string>();
  readonly removed: string[] = [];
  starts = 0;
  fail: (() => unknown) | undefined;
  /** Called on each wait for a running job (a test acts there: a cancel, a crash). */
  onWait: ((name: string) => Promise<void> | void) | undefined;

  constructor(
    private readonly clock: ManualClock,
    private readonly script: (spec: JobSpec) => JobScript = () => ({ exitCode: 0 }),
  ) {}

  async imageExists(ref: string): Promise<boolean> {
    this.outage();
    return this.images.has(ref);
  }
  async ensureJob(spec: JobSpec): Promise<JobState> {
    this.outage();
    const seen = this.jobs.get(spec.name);
    if (seen) return seen.state;
    const s = this.script(spec);
    if (s.throws) throw s.throws();
    this.starts++;
    const at = this.clock.now();
    const state: JobState = s.hold ? { state: "running", startedAt: at } : { state: "exited", exitCode: s.exitCode ?? 0, startedAt: at, finishedAt: at };
    this.jobs.set(spec.name, { spec, state, output: s.output ?? "" });
    // A build makes its images: each tag after `'-t'` in the builder's script (lib/runs/build-script.ts).
    if (state.state === "exited" && state.exitCode === 0)
      for (const [, tag] of (spec.cmd.at(-1) ?? "").matchAll(/'-t' '([^']+)'/g)) this.images.add(tag!);
    return state;
  }
  /** A running job is waited on for the whole time given: the clock moves on by that much. */
  async waitJob(name: string, timeoutMs: number): Promise<JobState> {
    const state = await this.inspectJob(name);
    if (state.state !== "running") return state;
    await this.onWait?.(name);
    this.clock.advance(timeoutMs);
    return this.inspectJob(name);
  }
  async inspectJob(name: string): Promise<JobState> {
    this.outage();
    return this.jobs.get(name)?.state ?? { state: "missing" };
  }
  async jobLogs(name: string): Promise<string> {
    return this.jobs.get(name)?.output ?? "";
  }
  async removeJob(name: string): Promise<void> {
    this.outage();
    this.removed.push(name);
    this.jobs.delete(name);
  }
  /** What each push target holds: the fake registry answers from it. */
  readonly pushed = new Map<string, string>();
  async push(_source: string, target: string): Promise<PushResult> {
    this.outage();
    const digest = `sha256:${"0".repeat(63)}${target.length % 10}`;
    this.pushed.set(target, digest);
    return { digest };
  }
  /** Ends a held job. */
  finish(name: string, exitCode = 0): void {
    const job = this.jobs.get(name);
    if (job?.state.state === "running") job.state = { state: "exited", exitCode, startedAt: job.state.startedAt, finishedAt: this.clock.now() };
  }
  private outage(): void {
    if (this.fail) throw this.fail();
  }
}

/**
 * A repository whose `.hoist.yml` is `files[".hoist.yml"]` at every commit, whose branches'
 * heads are `heads`, or whose reads fail as `fail` says.
 */
export class FakeSource implements SourceReader {
  reads = 0;
  fail: (() => unknown) | undefined;
  readonly heads: Record<string, string> = {};
  constructor(public files: Record<string, string> = {}) {}
  async readFile(_repo: RepoRef, _sha: string, path: string): Promise<string | undefined> {
    this.reads++;
    if (this.fail) throw this.fail();
    return this.files[path];
  }
  async resolveRef(_repo: RepoRef, ref: string): Promise<ResolvedRef | undefined> {
    if (this.fail) throw this.fail();
    const sha = this.heads[ref];
    return sha === undefined ? undefined : { branch: ref, sha };
  }
  async archive(): Promise<Readable> {
    return Readable.from([]);
  }
}

/** A registry holding what a FakeEngine pushed, with the logins given. */
export class FakeRegistry implements RegistryAccess {
  readonly asked: { ref: string; auth: RegistryAuth | undefined }[] = [];
  constructor(
    private readonly engine: FakeEngine,
    private readonly logins: Record<string, RegistryAuth> = {},
  ) {}
  async login(host: string): Promise<RegistryAuth | undefined> {
    return this.logins[host];
  }
  async digest(ref: string, auth: RegistryAuth | undefined): Promise<string> {
    this.asked.push({ ref, auth });
    const [name, byDigest] = ref.split("@");
    const digest = byDigest ? [...this.engine.pushed].find(([target, d]) => d === byDigest && target.startsWith(`${name}:`))?.[1] : this.engine.pushed.get(ref);
    if (!digest) throw new NotFoundError(`${ref} is not in the registry`);
    return digest;
  }
}
