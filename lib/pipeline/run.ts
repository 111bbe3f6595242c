import { ApprovalAsk, Gate } from "./approval.ts";
import { CommitRef } from "./refs.ts";
import { RunStatus, StageStatus } from "./statuses.ts";
import { Strategy } from "./strategy.ts";
import * as z from "zod";

/** The run record: what the table stores and the API returns. */

/** A stage as the run executes it: fully resolved, no defaults left to apply. */
export const StageSpec = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("build"),
    /** Local image name; the built tag is `<image>:<sha>`. With `compose`, each service's is `<image>-<service>` unless it names one. */
    image: z.string(),
    context: z.string(),
    dockerfile: z.string(),
    args: z.record(z.string(), z.string()),
    /** Build each service's image from its `build:` section: this compose file, with `overrides` merged over it. */
    compose: z.string().optional(),
    overrides: z.array(z.string()).optional(),
    services: z.array(z.string()).optional(),
  }),
  z.object({
    kind: z.literal("test"),
    run: z.string(),
    timeoutSec: z.number().int().positive(),
    env: z.record(z.string(), z.string()),
  }),
  z.object({
    kind: z.literal("push"),
    /** Full target reference without tag, e.g. `127.0.0.1:5000/shop`. */
    target: z.string(),
    /** Where a compose build's other images go (`<registry>/<their path>`); none: to the registry they name. */
    registry: z.string().optional(),
  }),
  z.object({
    kind: z.literal("deploy"),
    environment: z.string(),
    compose: z.string(),
    /** More compose files, merged over `compose` in order. */
    overrides: z.array(z.string()).optional(),
    service: z.string().optional(),
    services: z.array(z.string()).optional(),
    profiles: z.array(z.string()).optional(),
    strategy: Strategy.optional(),
    /** The stage's own `approval:`; its environment may ask for one too (lib/pipeline/approval.ts merges them). */
    approval: ApprovalAsk.optional(),
  }),
]);
export type StageSpec = z.infer<typeof StageSpec>;
export type StageKind = StageSpec["kind"];

/** What a finished stage produced. */
export const StageOutput = z
  .object({
    image: z.string().optional(),
    digest: z.string().optional(),
    exitCode: z.number().int().optional(),
    cached: z.boolean().optional(),
    /** The release a deploy stage made, in its environment's history. */
    release: z.string().optional(),
    /** A compose build's images by service (`<image>:<sha>`), and after a push, each by digest (`repository@sha256:...`). */
    images: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type StageOutput = z.infer<typeof StageOutput>;

/**
 * Facts recorded about a stage. Each is set once (first writer wins), so applying
 * the same event twice, or events in another order, yields the same record.
 */
export const StageFacts = z.object({
  startedAt: z.number().optional(),
  /** The engine job that carries the stage out (container name), for re-attaching after a crash. */
  job: z.string().optional(),
  finishedAt: z.number().optional(),
  ok: z.boolean().optional(),
  error: z.string().optional(),
  output: StageOutput.optional(),
  /** A deploy stage's approval gate, once the stage came up: its rule and the decisions made. */
  gate: Gate.optional(),
});
export type StageFacts = z.infer<typeof StageFacts>;

export const Stage = StageFacts.extend({
  name: z.string(),
  spec: StageSpec,
  status: StageStatus,
});
export type Stage = z.infer<typeof Stage>;

export const Trigger = z.discriminatedUnion("type", [
  /** `email`: the pusher's, as the provider gave it, for self-approval from chat. */
  z.object({ type: z.literal("push"), delivery: z.string(), actor: z.string().optional(), email: z.string().optional() }),
  /** `params` reach the run's test stages as environment variables. */
  z.object({ type: z.literal("manual"), actor: z.string().optional(), params: z.record(z.string(), z.string()).optional() }),
  z.object({ type: z.literal("schedule"), cron: z.string(), slot: z.number().optional() }),
]);

/** An earlier attempt of a run, kept when it is re-run: what each stage it re-ran came to then. */
export const Attempt = z.object({
  /** When the re-run that ended this attempt was asked, by whom, and from which stage. */
  at: z.number(),
  by: z.string(),
  from: z.number().int().nonnegative(),
  status: RunStatus,
  error: z.string().optional(),
  stages: z.array(z.object({ name: z.string(), status: StageStatus, error: z.string().optional(), startedAt: z.number().optional(), finishedAt: z.number().optional() })),
});
export type Attempt = z.infer<typeof Attempt>;
export type Trigger = z.infer<typeof Trigger>;

export const Run = z.object({
  id: z.string(),
  ...CommitRef.shape,
  pipeline: z.string(),
  trigger: Trigger,
  status: RunStatus,
  stages: z.array(Stage),
  /** Set when the run is stopped from outside its stages (cancel, unusable config); first stop wins. */
  stopped: z
    .object({ at: z.number(), status: z.enum(["cancelled", "failed"]), reason: z.string() })
    .optional(),
  error: z.string().optional(),
  image: z.string().optional(),
  digest: z.string().optional(),
  /** Earlier attempts, oldest first, when the run was re-run (`hoist rerun`). */
  attempts: z.array(Attempt).optional(),
  createdAt: z.number(),
  updatedAt: z.number(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
});
export type Run = z.infer<typeof Run>;
