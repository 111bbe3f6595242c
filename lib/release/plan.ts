import type { ReleaseSpec } from "./spec.ts";
import type { Checkpoint } from "./records.ts";

/** One release as its strategy runs it. */
export interface ReleasePlan {
  id: string;
  image: string;
  spec: ReleaseSpec;
  /** Instances serving the previous release, in the router now. */
  live: string[];
  /** The values of the variables the app's secrets are read from (see ReleaseContext.variables). */
  secretValues?: ReadonlyMap<string, string>;
  /** Where an earlier, parked call of this release stopped. */
  resume?: Checkpoint;
  /** Records where the release stands before a long wait. */
  checkpoint?: (at: Checkpoint) => Promise<void>;
  /**
   * A wait longer than this parks the release (ReleaseParked) instead of sleeping, and so does
   * following a host's own update for longer; default: never.
   */
  parkAfterMs?: number;
  /** When the release began (a resumed one began in an earlier call). */
  startedAt?: number;
}

/** How a strategy ended; a failed one says whether the previous release serves again. */
export type ReleaseOutcome =
  | { ok: true; instances: string[] }
  | { ok: false; error: string; rolledBack: boolean; instances: string[]; canary?: CanaryVerdict; cancelled?: true };

export interface CanaryVerdict {
  step: number;
  canary: { responses: number; errors: number };
  stable: { responses: number; errors: number };
}

/**
 * Thrown, with the release recorded and its environment still leased, when the release must
 * wait longer than its caller may (a canary interval in a worker with a budget): calling the
 * release again with the same id after `until` carries on.
 */
export class ReleaseParked extends Error {
  override name = "ReleaseParked";

  constructor(
    readonly until: number,
    readonly reason: string,
  ) {
    super(`${reason}; resumes at ${new Date(until).toISOString()}`);
  }
}
