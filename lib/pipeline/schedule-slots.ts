import { cronOf } from "./cron.ts";
import type { Schedule } from "./schema.ts";

/**
 * A schedule's slots are the instants its cron pattern fires at (epoch ms), in its time zone
 * (UTC when it names none), as croner computes them across daylight-saving changes: a fixed
 * time in the spring gap fires once, at the end of the gap; in the autumn overlap, a fixed time
 * fires once and an interval pattern (every 15 minutes) at both occurrences.
 */
type Pattern = Pick<Schedule, "cron" | "timezone">;

/**
 * How far back a schedule seen for the first time looks for a due slot: one scheduler tick
 * (a minute), with room for a late one.
 */
export const FIRST_SLOT_WINDOW_MS = 2 * 60_000;

/** The latest slot at or before `now`; undefined when the pattern never fired (30 February). */
export function latestSlot(schedule: Pattern, now: number): number | undefined {
  // previousRuns leaves out a run exactly at its reference.
  return cronOf(schedule.cron, schedule.timezone).previousRuns(1, new Date(now + 1))[0]?.getTime();
}

/** The first slot after `after`; undefined when the pattern never fires again. */
export function nextSlot(schedule: Pattern, after: number): number | undefined {
  return cronOf(schedule.cron, schedule.timezone).nextRun(new Date(after))?.getTime();
}

/**
 * The slot due at `now`: the latest one at or before `now` that is after `lastSlot`. Slots
 * missed while the scheduler was down are one slot, the latest: one run, not one per missed
 * minute. A schedule seen for the first time (no `lastSlot`) counts only a slot within
 * FIRST_SLOT_WINDOW_MS, so registering it does not fire a slot from long ago.
 */
export function dueSlot(schedule: Pattern, at: { lastSlot?: number | undefined; now: number }): number | undefined {
  const slot = latestSlot(schedule, at.now);
  if (slot === undefined) return undefined;
  return slot > (at.lastSlot ?? at.now - FIRST_SLOT_WINDOW_MS) ? slot : undefined;
}
