import * as z from "../zod-mini.ts";

/** `waiting`: a stage waits at its approval gate, and no worker holds the run. */
export const RUN_STATUSES = ["queued", "running", "waiting", "succeeded", "failed", "cancelled"] as const;
export const RunStatus = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof RunStatus>;

export const STAGE_STATUSES = ["pending", "waiting", "running", "succeeded", "failed", "skipped", "cancelled"] as const;
export const StageStatus = z.enum(STAGE_STATUSES);
export type StageStatus = z.infer<typeof StageStatus>;

export const TERMINAL: ReadonlySet<RunStatus> = new Set(["succeeded", "failed", "cancelled"]);
