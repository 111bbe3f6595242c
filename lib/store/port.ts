import type { Run, RunStatus } from "../pipeline/run.ts";

/** A run as stored: the record plus the store's own bookkeeping. */
export interface StoredRun {
  run: Run;
  /** Optimistic-lock version; every save must name the version it read. */
  version: number;
  /** Epoch ms after which the reconciler may re-drive the run (unset once it is final). */
  leaseUntil?: number;
  leaseOwner?: string;
}

export interface Lease {
  until: number;
  owner?: string;
}

export interface RunFilter {
  repo?: string;
  branch?: string;
  status?: RunStatus;
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface LogChunk {
  stage: number;
  offset: number;
  text: string;
}

export interface RunStore {
  /** Writes a new run unless one with that id exists; the run id is the dedupe key. */
  createRun(run: Run, lease: Lease): Promise<"created" | "exists">;
  getRun(id: string): Promise<StoredRun | undefined>;
  /** Saves `run` only if the stored version is still `expected`; undefined on a conflict. */
  saveRun(run: Run, expected: number, lease: Lease | undefined): Promise<StoredRun | undefined>;
  listRuns(filter: RunFilter): Promise<{ runs: Run[]; cursor?: string }>;
  /** Unfinished runs whose lease ran out before `now`: the reconciler's work list. */
  expiredRuns(now: number, limit: number): Promise<StoredRun[]>;
  /** Stores a log chunk at a fixed offset; writing the same chunk again is harmless. */
  putLog(runId: string, chunk: LogChunk): Promise<void>;
  readLogs(runId: string, stage?: number): Promise<LogChunk[]>;
}
