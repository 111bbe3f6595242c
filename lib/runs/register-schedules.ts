import { declaredSchedules } from "../pipeline/declared-schedules.ts";
import type { HoistFile } from "../pipeline/schema.ts";
import { scheduleId, type NewSchedule, type Registration, type RegistrationResult, type ScheduleStore } from "../store/schedules.ts";

/**
 * Registers the schedules `.hoist.yml` at a branch's new head makes fire on that branch, once a
 * push to it is resolved: the branch's registry becomes what the file declares, so a schedule
 * removed from the file stops firing, and one whose `only_if_new_commits` changed keeps its
 * slots. `file` undefined (no `.hoist.yml` at the head, or the branch was deleted) removes the
 * branch's schedules; a file that does not parse should not be registered, so the schedules
 * stay as the last good file left them. "stale" when a push received later registered first.
 */
export async function registerSchedules(schedules: ScheduleStore, push: Registration, file: HoistFile | undefined): Promise<RegistrationResult | "stale"> {
  const declared = file ? declaredSchedules(file, push.branch) : [];
  // The same pattern twice in one pipeline is one schedule: the first entry decides.
  const byId = new Map<string, NewSchedule>();
  for (const { pipeline, schedule } of declared) {
    const id = scheduleId(push.branch, pipeline, schedule);
    if (!byId.has(id)) byId.set(id, { id, pipeline, schedule });
  }
  return schedules.replaceSchedules(push, [...byId.values()]);
}
