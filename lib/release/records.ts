import { Strategy } from "../pipeline/strategy.ts";
import * as z from "zod";

/**
 * `queued`: asked for (a rollback through the API) and waiting for a worker to run it;
 * `cancelled`: its run was cancelled before it ended, and the previous release serves again.
 */
export const ReleaseStatus = z.enum(["queued", "running", "succeeded", "failed", "cancelled"]);

const Counters = z.object({ name: z.string(), responses: z.number(), errors5xx: z.number(), failures: z.number(), sessions: z.number() });

/**
 * Where a parked release stands, so that whichever worker wakes up next carries on from there:
 * when it has something to do again, what it waits for, and for a canary the step whose weights
 * are set and the router's counters when it began.
 */
export const Checkpoint = z.object({
  until: z.number(),
  waiting: z.string(),
  canary: z.object({ step: z.number(), before: z.array(Counters) }).optional(),
});
export type Checkpoint = z.infer<typeof Checkpoint>;

/** One release of an environment, as history keeps it. */
export const ReleaseRecord = z.object({
  env: z.string(),
  id: z.string(),
  image: z.string(),
  service: z.string(),
  strategy: Strategy,
  trigger: z.object({ type: z.enum(["run", "rollback", "manual"]), by: z.string(), runId: z.string().optional(), rollbackOf: z.string().optional() }),
  status: ReleaseStatus,
  startedAt: z.number(),
  finishedAt: z.number().optional(),
  error: z.string().optional(),
  /** A failed release whose previous release serves again. */
  rolledBack: z.boolean().optional(),
  /** The registry digest its instances run, read from the engine once it succeeded (none for an image no registry holds). */
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional(),
  /** Instances serving this release once it succeeded. */
  instances: z.array(z.string()),
  /** The instances each of the app's other services runs once it succeeded (an unchanged one keeps the previous release's). */
  companions: z.record(z.string(), z.array(z.string())).optional(),
  previous: z.string().optional(),
  /** The release description it ran with, so a rollback can run it again. */
  spec: z.unknown(),
  /** Set while a running release waits between steps without a worker. */
  checkpoint: Checkpoint.optional(),
  canary: z.object({ step: z.number(), canary: z.object({ responses: z.number(), errors: z.number() }), stable: z.object({ responses: z.number(), errors: z.number() }) }).optional(),
});
export type ReleaseRecord = z.infer<typeof ReleaseRecord>;

export interface ReleaseStore {
  /** Takes the environment's release lease unless someone else holds an unexpired one. */
  lock(env: string, owner: string, until: number, now: number): Promise<{ ok: true } | { ok: false; holder: string; until: number }>;
  unlock(env: string, owner: string): Promise<void>;
  putRelease(record: ReleaseRecord): Promise<void>;
  /** Newest first. */
  listReleases(env: string, limit?: number): Promise<ReleaseRecord[]>;
  getRelease(env: string, id: string): Promise<ReleaseRecord | undefined>;
}
