import * as z from "zod";
import type { Run } from "../pipeline/run.ts";
import { RunStatus } from "../pipeline/statuses.ts";

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

/** Most runs one page lists. */
export const MAX_PAGE = 200;

/** Which runs to list: the one filter the store, the API's query and the CLI share. */
export const RunFilter = z
  .object({
    /** `<provider>:<full name>`, as runs are keyed by repository. */
    repo: z
      .string()
      .max(300)
      .regex(/^(github|gitlab):[^\s]+$/, "repo is provider:full/name, e.g. github:acme/shop or gitlab:group/project")
      .optional(),
    branch: z.string().min(1).max(300).optional(),
    status: z.optional(RunStatus),
    /** Runs per page; query strings carry it as text. */
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
    /** Opaque cursor from a previous page. */
    cursor: z.string().max(2000).optional(),
  })
  .strict();
export type RunFilter = z.output<typeof RunFilter>;

export interface LogChunk {
  stage: number;
  offset: number;
  text: string;
}

export interface RunStore {
  /** Writes a new run unless one with that id exists; the run id is the dedupe key. */
  createRun(run: Run, lease: Lease): Promise<"created" | "exists">;
  getRun(id: string): Promise<StoredRun | undefined>;
  /**
   * Saves `run` only if the stored version is still `expected`; undefined on a conflict.
   * Throws RecordTooLargeError (createRun too) when the record is over the item limit.
   */
  saveRun(run: Run, expected: number, lease: Lease | undefined): Promise<StoredRun | undefined>;
  listRuns(filter: RunFilter): Promise<{ runs: Run[]; cursor?: string }>;
  /** Unfinished runs whose lease ran out before `now`: the reconciler's work list. */
  expiredRuns(now: number, limit: number): Promise<StoredRun[]>;
  /** Stores a log chunk at a fixed offset; writing the same chunk again is harmless. */
  putLog(runId: string, chunk: LogChunk): Promise<void>;
  readLogs(runId: string, stage?: number): Promise<LogChunk[]>;
}
