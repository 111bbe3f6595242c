import * as z from "zod";

/** The release strategies, one list for the pipeline file, the compose file, runs and release history. */
export const STRATEGIES = ["rolling", "blue-green", "canary"] as const;
export const Strategy = z.enum(STRATEGIES);
export type Strategy = z.infer<typeof Strategy>;
