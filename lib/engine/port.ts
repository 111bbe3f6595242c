import type { Readable } from "node:stream";
import type { RegistryAuth } from "../registry/auth.ts";

/**
 * The Docker engine as the worker needs it. Long work runs as named "job" containers
 * on the engine, detached from the caller: a worker that dies leaves the job running,
 * and the next worker re-attaches to it by name instead of starting it again.
 */

export interface JobSpec {
  /** Container name; the idempotency key of the job. */
  name: string;
  image: string;
  cmd: string[];
  /** Replaces the image's entrypoint (a test command must not be handed to the app's entrypoint). */
  entrypoint?: string[];
  env?: Record<string, string>;
  labels?: Record<string, string>;
  /**
   * Run as a process in the engine's long-lived job agent (a container of `image`) instead
   * of a container of its own: it starts ~0.4 s sooner. `files` then land in the job's own
   * directory and the command runs there.
   */
  agent?: boolean;
  /** "none": no network namespace, which starts faster (the builder only needs the socket). */
  network?: "none";
  /** Bind the engine's own socket into the job (the builder drives the engine that runs it). */
  mountEngineSocket?: boolean;
  /** A tar stream unpacked at `filesAt` inside the container before it starts. */
  files?: () => Promise<Readable>;
  filesAt?: string;
}

export type JobState =
  | { state: "missing" }
  | { state: "created" }
  | { state: "running"; startedAt: number }
  | { state: "exited"; exitCode: number; startedAt: number; finishedAt: number };

export interface PushResult {
  /** `sha256:...` manifest digest reported by the registry. */
  digest: string;
}

export interface Engine {
  /** True when the image reference exists on the engine. */
  imageExists(ref: string): Promise<boolean>;
  /** Creates (with files) and starts the job unless a container of that name exists; starts it if only created. */
  ensureJob(spec: JobSpec): Promise<JobState>;
  /** Waits until the job exits or `timeoutMs` passes; returns its state then. */
  waitJob(name: string, timeoutMs: number): Promise<JobState>;
  inspectJob(name: string): Promise<JobState>;
  /** Combined stdout+stderr of the job so far, as text. */
  jobLogs(name: string): Promise<string>;
  /** Kills (if running) and removes the job container; no error if it is gone. */
  removeJob(name: string): Promise<void>;
  /** Tags `source` as `target` and pushes `target` with `auth` (none: anonymous); streams progress lines to `onProgress`. */
  push(source: string, target: string, opts?: { auth?: RegistryAuth | undefined; onProgress?: (line: string) => void }): Promise<PushResult>;
}
