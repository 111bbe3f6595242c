import * as z from "zod";
import { ConfigSchema, type Config } from "../lib/config.ts";

/**
 * The settings the stack's one Secrets Manager secret holds (README, Deploy on AWS). A
 * function's environment is readable by anyone allowed to read its configuration, so these
 * never go there: each function reads them from the secret at cold start.
 */
export const SECRET_SETTINGS = [
  "GITHUB_WEBHOOK_SECRET",
  "GITLAB_WEBHOOK_TOKEN",
  "HOIST_API_TOKEN",
  "HOIST_LINK_SECRET",
  "GITHUB_TOKEN",
  "GITLAB_TOKEN",
  "SLACK_BOT_TOKEN",
  "SLACK_SIGNING_SECRET",
  "HOIST_ROBOT_SECRET",
] as const satisfies readonly (keyof Config)[];

/** Settings the stack sets itself, from what it creates: a value from the context would point a function away from them. */
export const STACK_SETTINGS = ["HOIST_TABLE", "HOIST_QUEUE", "HOIST_QUEUE_URL", "HOIST_SECRETS_ARN", "HOIST_PUBLIC_URL", "HOIST_STEP_BUDGET_MS"] as const satisfies readonly (keyof Config)[];

function refusal(key: string): string | undefined {
  if ((SECRET_SETTINGS as readonly string[]).includes(key)) return "is a secret: put it in the stack's secret (README, Deploy on AWS), never in a function's environment";
  if ((STACK_SETTINGS as readonly string[]).includes(key)) return "is set by the stack (for HOIST_PUBLIC_URL, use the context key publicUrl)";
  // AWS_REGION is Lambda's to set; the endpoints stand in for AWS in tests.
  if (key.startsWith("AWS_")) return "is not for a function on AWS";
  return key in ConfigSchema.shape ? undefined : "is not a Hoist setting (lib/config.ts)";
}

/** `-c key=value` gives a string; cdk.json gives JSON: both are accepted. */
const jsonOrValue = (value: unknown): unknown => {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value; // not JSON: the schema says what it should have been
  }
};

/**
 * Non-secret Hoist settings for every function, by lib/config.ts's names, checked against its
 * schema here so a bad value stops `cdk synth` rather than every cold start.
 */
const Settings = z
  .record(z.string(), z.string())
  .default({})
  .superRefine((settings, ctx) => {
    for (const key of Object.keys(settings)) {
      const why = refusal(key);
      if (why) ctx.addIssue({ code: "custom", path: [key], message: why });
    }
    const parsed = ConfigSchema.safeParse(settings);
    if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  });

const commaList = z.preprocess((v) => (typeof v === "string" && !v.startsWith("[") ? v.split(",").map((s) => s.trim()).filter(Boolean) : jsonOrValue(v)), z.array(z.string()));

export const HoistContext = z.object({
  /** The CloudFormation stack's name: several Hoists can live in one account under different names. */
  stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, "is a CloudFormation stack name (letters, digits, hyphens)").default("Hoist"),
  /** Who gets the alarms by email; unset: the alarms only show in CloudWatch. */
  alarmEmail: z.email().optional(),
  /** Where people reach Hoist when not at the HTTP API's own URL (a custom domain in front of it). */
  publicUrl: z.url({ protocol: /^https$/, error: "must be an https:// URL" }).optional(),
  settings: z.preprocess(jsonOrValue, Settings),
  /** ECR repositories the worker may push to and pull from (registries registered with auth "ecr"). */
  ecrRepositoryArns: commaList.pipe(z.array(z.string().regex(/^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository\/.+$/, "is an ECR repository ARN"))).default([]),
});
export type HoistContext = z.output<typeof HoistContext>;

export class ContextError extends Error {
  override name = "ContextError";
}

/** The stack's choices from the CDK context (cdk.json or `-c key=value`); a bad value throws naming each key. */
export function readContext(get: (key: string) => unknown): HoistContext {
  const raw = Object.fromEntries(Object.keys(HoistContext.shape).map((key) => [key, get(key)]));
  const result = HoistContext.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
  throw new ContextError(`invalid CDK context:\n${lines.join("\n")}`);
}
