import { createHash } from "node:crypto";
import * as z from "zod";
import { RepoRef } from "../pipeline/refs.ts";
import { Schedule } from "../pipeline/schema.ts";

/**
 * The schedule registry: every `on.schedule` entry of the `.hoist.yml` at the head of each
 * branch, with what the scheduler needs to fire each slot once (lib/runs/cron.ts).
 */

/**
 * A slot a scheduler tick claimed, whose run is not yet known to exist. The claim outlives a
 * crash between the claim and the run's creation: the next tick starts the run again under the
 * same id (derived from the slot), and only then is the slot settled.
 */
export const SlotClaim = z.object({ slot: z.number(), runId: z.string(), at: z.number() });
export type SlotClaim = z.infer<typeof SlotClaim>;

export const RegisteredSchedule = z.object({
  /** Its key among the repository's schedules (scheduleId). */
  id: z.string(),
  repo: RepoRef,
  /** The branch whose head a slot runs, and whose `.hoist.yml` declares the schedule. */
  branch: z.string(),
  pipeline: z.string(),
  schedule: Schedule,
  /** The commit whose `.hoist.yml` registered the schedule as it is. */
  sha: z.string(),
  /** When the push that registered it was received: registrations apply in that order. */
  registeredAt: z.number(),
  /** The latest slot dealt with: run, skipped, or passed before the schedule was first seen. */
  lastSlot: z.number().optional(),
  /** The branch head the last scheduled run started at: `only_if_new_commits` compares with it. */
  lastSha: z.string().optional(),
  claim: SlotClaim.optional(),
});
export type RegisteredSchedule = z.infer<typeof RegisteredSchedule>;

export interface StoredSchedule {
  record: RegisteredSchedule;
  /** Optimistic-lock version; every save names the version it read. */
  version: number;
  /** When the scheduler next needs to look at it; none when its pattern never fires again. */
  dueAt?: number;
}

/** What a push to `branch` registers from the `.hoist.yml` at `sha`. */
export interface Registration {
  repo: RepoRef;
  branch: string;
  sha: string;
  /** When the push was received (the delivery's receivedAt), which orders registrations of a branch. */
  receivedAt: number;
}

/** A schedule to register: its key and what it fires. */
export interface NewSchedule {
  id: string;
  pipeline: string;
  schedule: Schedule;
}

/** The keys a registration added, changed, left as they were and removed. */
export interface RegistrationResult {
  added: string[];
  updated: string[];
  kept: string[];
  removed: string[];
}

export interface ScheduleStore {
  /**
   * Makes `schedules` the branch's registry (at most what one file declares: 20 pipelines of 8
   * schedules, lib/pipeline/schema.ts): new ones are added (due at once, so the next tick
   * looks at them), changed ones updated keeping their slots and claim, the others removed.
   * "stale", with nothing written, when a push to the branch received later registered first.
   * Safe to repeat: the same registration again changes nothing.
   */
  replaceSchedules(registration: Registration, schedules: readonly NewSchedule[]): Promise<RegistrationResult | "stale">;
  /** Schedules due at or before `now`, the longest due first, at most `limit`. */
  listSchedules(now: number, limit: number): Promise<StoredSchedule[]>;
  /**
   * Saves `record` if the stored version is still `expected`, due again at `dueAt` (never when
   * undefined); undefined on a conflict or when the schedule was removed meanwhile.
   */
  saveSchedule(record: RegisteredSchedule, expected: number, dueAt: number | undefined): Promise<StoredSchedule | undefined>;
}

/**
 * A schedule's key among its repository's: `<branch>:<pipeline>:<digest of pattern and time
 * zone>`. Git refuses ":" in branch names and pipeline names have none, so a branch's keys share
 * the prefix `<branch>:` and no other branch's start with it. A schedule naming no time zone
 * runs in UTC, so it is the same schedule as one naming UTC.
 */
export function scheduleId(branch: string, pipeline: string, schedule: Pick<Schedule, "cron" | "timezone">): string {
  const digest = createHash("sha256").update(`${schedule.cron}\n${schedule.timezone ?? "UTC"}`).digest("hex").slice(0, 20);
  return `${branch}:${pipeline}:${digest}`;
}

/** The registry prefix of a branch's schedule keys. */
export function branchPrefix(branch: string): string {
  return `${branch}:`;
}
