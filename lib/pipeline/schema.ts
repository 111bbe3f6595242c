import { parseDuration } from "../duration.ts";
import { MAX_APPROVAL_TIMEOUT_SEC, MAX_APPROVERS } from "./approval.ts";
import { cronProblem } from "./cron.ts";
import { Strategy } from "./strategy.ts";
import * as z from "zod";
import { ENVIRONMENT_NAME, quoted } from "./names.ts";
import { MAX_STAGES } from "./size.ts";

/**
 * Schema of `.hoist.yml`, the pipeline file in the application repository. It comes from
 * outside, and what it says is copied into run records: every text, list and map is bounded,
 * so a record stays far under DynamoDB's item limit (lib/pipeline/size.ts).
 */

/** A test command: long scripts belong in a file of the repository that the command runs. */
export const MAX_COMMAND_CHARS = 16 * 1024;
/** Entries of a test's `env` or a build's `args`. */
export const MAX_VARIABLES = 64;
/** Pipelines in one file. */
export const MAX_PIPELINES = 20;

const text = (max: number) => z.string().max(max, `at most ${max} characters`);
const list = <T extends z.ZodType>(item: T, max: number) => z.array(item).max(max, `at most ${max} entries`);

/**
 * A map from outside: at most `max` entries, each key matching `key`. Checked here rather than
 * by a key schema, whose message zod replaces with "Invalid key in record".
 */
const boundedMap = <T extends z.ZodType>(value: T, max: number, key: RegExp, rule: string) =>
  z.record(z.string(), value).superRefine((map, ctx) => {
    const keys = Object.keys(map);
    if (keys.length > max) ctx.addIssue({ code: "custom", message: `at most ${max} entries` });
    const bad = keys.find((k) => !key.test(k));
    if (bad !== undefined) ctx.addIssue({ code: "custom", message: `${rule}: "${quoted(bad)}"` });
  });

/** Variables (a test's environment, a build's arguments): names and values of bounded size, and few. */
const variables = <T extends z.ZodType>(value: T) => boundedMap(value, MAX_VARIABLES, /^[^=\0]{1,256}$/, "names are 1 to 256 characters, without = or NUL");

const glob = text(256).min(1);
const globs = z.union([glob, list(glob, 50).min(1)]).transform((g) => (Array.isArray(g) ? g : [g]));

export const PushTrigger = z
  .object({
    branches: globs.optional(),
    tags: globs.optional(),
  })
  .strict();

/** Schedules one pipeline may have. */
export const MAX_SCHEDULES = 8;

/** A cron pattern croner reads (5 or 6 fields, or @daily and the like), in an IANA time zone. */
export const Schedule = z
  .object({
    cron: text(100).min(1),
    timezone: text(64).min(1).optional(),
    /** The branch whose head runs; default: the one branch the push trigger names. */
    branch: text(255).min(1).optional(),
    /** Skip a slot when the branch head has not moved since the last scheduled run. */
    only_if_new_commits: z.boolean().default(false),
  })
  .strict()
  .superRefine((s, ctx) => {
    const problem = cronProblem(s.cron, s.timezone);
    if (problem) ctx.addIssue({ code: "custom", path: [problem.field], message: problem.message });
  });
export type Schedule = z.output<typeof Schedule>;

const scheduleEntry = z.preprocess((v) => (typeof v === "string" ? { cron: v } : v), Schedule);
const schedules = z.union([scheduleEntry, list(scheduleEntry, MAX_SCHEDULES).min(1)]).transform((s) => (Array.isArray(s) ? s : [s]));

export const Triggers = z
  .object({
    push: z.union([PushTrigger, z.literal(true)]).optional(),
    /** Runs started by hand: `hoist trigger`, POST /api/pipelines/:repo/:pipeline/runs. */
    manual: z.boolean().optional(),
    /** Fired by the scheduler, each slot once: a cron pattern, `{ cron, timezone, branch, only_if_new_commits }`, or a list. */
    schedule: schedules.optional(),
  })
  .strict();

const imageName = text(255)
  .regex(/^[a-z0-9]+(?:[._\/:-][a-z0-9]+)*$/, "must be a lower-case image name such as registry.example.com/shop")
  .refine((s) => !(s.split("/").at(-1) ?? "").includes(":"), {
    message: "must not carry a tag: Hoist tags every image with the commit sha",
  });

/** A path inside the repository: builds share a host, so none may reach outside its own files. */
const repoPath = text(1024)
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes("..") && !p.startsWith("-"), "must be a relative path inside the repository");

/** One compose file, or several merged in order (`docker compose -f a -f b`). */
const composeFiles = z.union([repoPath, list(repoPath, 8).min(1, "name at least one compose file")]);

export const BuildStage = z
  .object({
    /** The image's name, or with `compose` the prefix of each service's (`<image>-<service>`). */
    image: imageName.optional(),
    context: repoPath.optional(),
    dockerfile: repoPath.optional(),
    args: variables(z.union([text(4096), z.number(), z.boolean()]).transform(String)).default({}),
    /** Build each service's image from its `build:` section in these compose files, as `docker compose build` does. */
    compose: composeFiles.optional(),
    /** With `compose`: only these services' images. */
    services: list(text(255).min(1), 64).min(1).optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.compose === undefined && b.services !== undefined) ctx.addIssue({ code: "custom", path: ["services"], message: "names services of a compose file: add compose:" });
    for (const key of ["context", "dockerfile"] as const)
      if (b.compose !== undefined && b[key] !== undefined)
        ctx.addIssue({ code: "custom", path: [key], message: "comes from each service's build: section when the stage builds from compose: remove it" });
  });

export const TestStage = z
  .object({
    run: text(MAX_COMMAND_CHARS).min(1),
    /** Seconds before the test container is killed and the stage fails. */
    timeout: z.number().int().positive().max(6 * 3600).default(600),
    env: variables(text(4096)).default({}),
  })
  .strict();

export const PushStage = z
  .object({
    /** Registry host[:port]; defaults to the server's HOIST_REGISTRY. */
    registry: text(255).min(1).optional(),
  })
  .strict();

/** A Go-style duration (30m, 24h, 1h30m) or a number of seconds, as whole seconds. */
const seconds = z.union([
  z.number().int().positive(),
  text(32).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined || ms < 1000) {
      ctx.addIssue({ code: "custom", message: `"${v}" is not a duration such as 30m or 24h` });
      return z.NEVER;
    }
    return Math.round(ms / 1000);
  }),
]);

export const StageApproval = z
  .object({
    /** Who may decide: Slack ids (slack:U0123), emails or names; none: anyone who can reach a decision. */
    approvers: list(text(200).min(1), MAX_APPROVERS).optional(),
    count: z.number().int().min(1).max(MAX_APPROVERS).optional(),
    timeout: seconds.pipe(z.number().min(60, "at least a minute").max(MAX_APPROVAL_TIMEOUT_SEC, "at most 30 days")).optional(),
    self_approval: z.boolean().optional(),
  })
  .strict();

export const DeployStage = z
  .object({
    /** An environment registered on the server (its engine, router and rules live there). */
    environment: z.string().regex(ENVIRONMENT_NAME, "is an environment name: lower-case letters, digits and -, at most 40"),
    /** The compose file describing the release, or several merged in order (`docker compose -f a -f b`). */
    compose: composeFiles.default("docker-compose.yml"),
    /** The service that takes the environment's traffic; default: the one that can (see lib/compose/app.ts). */
    service: text(255).min(1).optional(),
    /** Release only these services and what they depend on; default: every service. */
    services: list(text(255).min(1), 64).optional(),
    /** Compose profiles whose services are released too. */
    profiles: list(text(255).min(1), 64).optional(),
    /** Overrides the compose file's `x-hoist.strategy` for this stage. */
    strategy: Strategy.optional(),
    /** People must approve before the stage releases (`true`: one approval from anyone who can decide). */
    approval: z.union([z.literal(true), StageApproval]).optional(),
  })
  .strict();

/** `build:` with nothing after it means "all defaults". */
const orEmpty = <T extends z.ZodType>(s: T) => z.preprocess((v) => v ?? {}, s);

// One object with optional keys rather than a union, so a mistake inside a stage is
// reported at its own field instead of as "no union member matched".
export const StageEntry = z
  .object({ build: orEmpty(BuildStage).optional(), test: TestStage.optional(), push: orEmpty(PushStage).optional(), deploy: DeployStage.optional() })
  .strict()
  .superRefine((s, ctx) => {
    const kinds = Object.keys(s);
    if (kinds.length !== 1) ctx.addIssue({ code: "custom", message: `a stage is exactly one of build, test, push, deploy (found ${kinds.join(", ") || "none"})` });
  })
  .transform(
    (
      s,
    ):
      | { build: z.output<typeof BuildStage> }
      | { test: z.output<typeof TestStage> }
      | { push: z.output<typeof PushStage> }
      | { deploy: z.output<typeof DeployStage> } =>
      s.build ? { build: s.build } : s.test ? { test: s.test } : s.deploy ? { deploy: s.deploy } : { push: s.push ?? {} },
  );

export const Pipeline = z
  .object({
    on: Triggers,
    /** `cancel_in_progress`: a newer run of the pipeline on the same branch cancels older ones still going. */
    concurrency: z.object({ cancel_in_progress: z.boolean() }).strict().optional(),
    stages: list(StageEntry, MAX_STAGES)
      .min(1)
      .superRefine((stages, ctx) => {
        // A test runs inside the built image, a push sends it and a deploy releases it: all need a build first.
        const firstBuild = stages.findIndex((s) => "build" in s);
        stages.forEach((s, i) => {
          if (!("build" in s) && (firstBuild < 0 || i < firstBuild))
            ctx.addIssue({ code: "custom", path: [i], message: `a ${Object.keys(s)[0]} stage needs a build stage before it` });
        });
      }),
  })
  .strict();

export const HoistFile = z
  .object({
    pipelines: boundedMap(Pipeline, MAX_PIPELINES, /^[A-Za-z0-9_.-]{1,64}$/, "pipeline names use letters, digits, . _ - (at most 64)").refine(
      (p) => Object.keys(p).length > 0,
      "declare at least one pipeline",
    ),
  })
  .strict();

export type HoistFile = z.output<typeof HoistFile>;
export type Pipeline = z.output<typeof Pipeline>;
export type StageEntry = z.output<typeof StageEntry>;
export type StageApproval = z.output<typeof StageApproval>;
