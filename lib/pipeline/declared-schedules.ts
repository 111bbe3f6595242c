import picomatch from "picomatch";
import type { HoistFile, Pipeline, Schedule } from "./schema.ts";

/** A schedule of `.hoist.yml` and the pipeline it starts. */
export interface DeclaredSchedule {
  pipeline: string;
  schedule: Schedule;
}

/**
 * The schedules that `.hoist.yml`, read at the head of `branch`, makes fire on `branch`.
 * A schedule fires on its `branch:`, else on the one branch the pipeline's push trigger names
 * (a literal name, no glob), else on the branch whose file declares it. Only the file of the
 * branch a schedule fires on registers it: a slot's run reads that file at the head it starts
 * (lib/runs/start-run.ts), and a branch carrying a copy (a feature branch whose file says
 * `branch: main`) neither adds to nor removes from main's schedules.
 */
export function declaredSchedules(file: HoistFile, branch: string): DeclaredSchedule[] {
  return Object.entries(file.pipelines).flatMap(([pipeline, spec]) =>
    (spec.on.schedule ?? []).filter((schedule) => (schedule.branch ?? pushBranch(spec) ?? branch) === branch).map((schedule) => ({ pipeline, schedule })),
  );
}

/** The one branch a push trigger names, when it names exactly one and not by a pattern. */
function pushBranch(pipeline: Pipeline): string | undefined {
  const push = pipeline.on.push;
  const only = push !== undefined && push !== true && push.branches?.length === 1 ? push.branches[0] : undefined;
  if (only === undefined) return undefined;
  const scanned = picomatch.scan(only);
  return scanned.isGlob || scanned.negated ? undefined : only;
}
