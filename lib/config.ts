import * as z from "./zod-mini.ts";
import { EngineAccess, LOCAL_ENGINE } from "./engine/access.ts";

/**
 * Every setting Hoist reads, in one place, and the only file that names `process.env`.
 * Only the edge (functions/, the CLI's entry) calls `loadConfig()` or `loadCliConfig()`;
 * lib/ receives the typed object.
 */

export type Env = Readonly<Record<string, string | undefined>>;

/** A copy of this process's environment: the one place Hoist reads it. */
export function processEnv(): Env {
  return { ...process.env };
}

/** The registry `scripts/services.sh` starts, which `hoist demo` pushes to by default. */
export const LOCAL_REGISTRY = "127.0.0.1:5000";
const DEFAULT_PORT = 8080;
/** Where `hoist start` listens by default, which the CLI talks to by default. */
export const LOCAL_URL = `http://127.0.0.1:${DEFAULT_PORT}`;

const list = z.pipe(
  z.optional(z.string()),
  z.transform((s) => (s ?? "").split(",").map((x) => x.trim()).filter(Boolean)),
);
/** Webhook secrets: a short one can be guessed, and is too common a string to redact from logs. */
const secrets = list.check(z.refine((all) => all.every((s) => s.length >= 16), "each secret must be at least 16 characters (e.g. `openssl rand -hex 20`)"));
const flag = z.pipe(
  z.optional(z.enum(["0", "1", "true", "false", ""])),
  z.transform((s) => s === "1" || s === "true"),
);
const count = () => z.coerce.number().check(z.int(), z.positive());
const ms = (fallback: number) => z._default(count(), fallback);
const logLevel = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
/** The image build and test stages run their tools in (scripts/images.sh makes it). */
const builderImage = z._default(z.string().check(z.minLength(1)), "hoist/builder:latest");

export const ConfigSchema = z.object({
  HOIST_PORT: z._default(z.coerce.number().check(z.int(), z.minimum(0), z.maximum(65535)), DEFAULT_PORT),
  HOIST_DATA_DIR: z._default(z.string(), ".hoist"),
  HOIST_TABLE: z._default(z.string().check(z.minLength(3), z.maxLength(255)), "hoist"),
  HOIST_QUEUE: z._default(z.string().check(z.minLength(1)), "hoist-runs"),
  /** Set on AWS (the stack creates the queue); locally the queue is created by name. */
  HOIST_QUEUE_URL: z.optional(z.url()),
  /** Bearer token for /api; the API refuses every request when it is unset. */
  HOIST_API_TOKEN: z.optional(z.string().check(z.minLength(16, "HOIST_API_TOKEN must be at least 16 characters"))),
  /** Comma-separated: several secrets are accepted so they can be rotated. */
  GITHUB_WEBHOOK_SECRET: secrets,
  GITLAB_WEBHOOK_TOKEN: secrets,
  GITHUB_TOKEN: z.optional(z.string()),
  GITHUB_API_URL: z.optional(z.url()),
  GITLAB_TOKEN: z.optional(z.string()),
  GITLAB_URL: z.optional(z.url()),
  HOIST_ALLOW_LOCAL_REPOS: flag,
  HOIST_REGISTRY: z.optional(z.string()),
  /** The engine that builds, tests and pushes: unix:///path, tcp://host:2376 or ssh://user@host. Unset: DOCKER_HOST, else the local socket. */
  HOIST_BUILD_ENGINE: z.optional(z.string()),
  /** For a tcp:// builder: paths of the CA, client certificate and key (dockerd --tlsverify). */
  HOIST_BUILD_ENGINE_TLS_CA: z.optional(z.string().check(z.minLength(1))),
  HOIST_BUILD_ENGINE_TLS_CERT: z.optional(z.string().check(z.minLength(1))),
  HOIST_BUILD_ENGINE_TLS_KEY: z.optional(z.string().check(z.minLength(1))),
  /** For an ssh:// builder: the private key's path and the host key's fingerprint (SHA256:...). */
  HOIST_BUILD_ENGINE_SSH_KEY: z.optional(z.string().check(z.minLength(1))),
  HOIST_BUILD_ENGINE_SSH_HOST_KEY: z.optional(z.string().check(z.minLength(1))),
  DOCKER_HOST: z.optional(z.string()),
  HOIST_BUILDER_IMAGE: builderImage,
  /** Where the ECR API is asked for registry tokens, when not AWS itself (tests). */
  AWS_ENDPOINT_URL_ECR: z.optional(z.url()),
  AWS_REGION: z._default(z.string(), "us-east-1"),
  AWS_ENDPOINT_URL_DYNAMODB: z.optional(z.url()),
  AWS_ENDPOINT_URL_SQS: z.optional(z.url()),
  /** On AWS: the Secrets Manager secret whose JSON holds the secret settings, read at each cold start (lib/aws/secrets.ts). */
  HOIST_SECRETS_ARN: z.optional(z.string().check(z.startsWith("arn:", "is a secret's ARN"))),
  AWS_ENDPOINT_URL_SECRETS_MANAGER: z.optional(z.url()),
  /** auto: the lean loopback transport for the embedded servers on this machine, the SDK elsewhere; sdk: the SDK always (as on AWS). */
  HOIST_AWS_TRANSPORT: z._default(z.enum(["auto", "sdk"]), "auto"),
  /** How long a worker's claim on a run lasts without a heartbeat. */
  HOIST_LEASE_MS: ms(30_000),
  /** How long one worker invocation may work on a run before it hands over through the queue. */
  HOIST_STEP_BUDGET_MS: ms(60_000),
  /** Grace before the reconciler re-drives a run nobody has claimed (a lost message). */
  HOIST_REDRIVE_AFTER_MS: ms(30_000),
  HOIST_RECONCILE_EVERY_MS: ms(5_000),
  HOIST_MAX_BODY_BYTES: z._default(count(), 1024 * 1024),
  HOIST_WORKER_CONCURRENCY: z._default(count(), 4),
  /** YAML list of environments the local runtime registers at start (same fields as the API). */
  HOIST_ENVIRONMENTS_FILE: z.optional(z.string().check(z.minLength(1))),
  /**
   * The local runtime starts a router (HAProxy) on 127.0.0.1 at this port and registers a `local`
   * environment on the local engine behind it, unless one is registered; unset: neither.
   */
  HOIST_LOCAL_ROUTER_PORT: z.optional(z.coerce.number().check(z.int(), z.minimum(1), z.maximum(65_535))),
  /** Where that router keeps its config, runtime socket and routes map (under its port): one per directory Hoist runs from. */
  HOIST_LOCAL_ROUTER_DIR: z._default(z.string(), ".hoist/router"),
  /** The name of that environment. */
  HOIST_LOCAL_ENVIRONMENT: z._default(z.string().check(z.regex(/^[a-z][a-z0-9-]{0,39}$/, "is an environment name")), "local"),
  /** The longest one release may hold its environment. */
  HOIST_RELEASE_LEASE_MS: ms(15 * 60_000),
  HOIST_LOG_LEVEL: z._default(logLevel, "info"),
  /** Where people reach this server (links in commit statuses, chat messages and approval links); default http://127.0.0.1:HOIST_PORT. */
  HOIST_PUBLIC_URL: z.optional(z.url()),
  /** Signs approval links (HMAC); at least 32 characters. Unset: robots cannot carry approval links. */
  HOIST_LINK_SECRET: z.optional(z.string().check(z.minLength(32, "HOIST_LINK_SECRET must be at least 32 characters (e.g. `openssl rand -hex 32`)"))),
  /** Slack: the bot token that posts approval requests and notifications, and the app's signing secret for /chat/slack. */
  SLACK_BOT_TOKEN: z.optional(z.string().check(z.minLength(1))),
  SLACK_SIGNING_SECRET: z.optional(z.string().check(z.minLength(16, "SLACK_SIGNING_SECRET must be at least 16 characters"))),
  /** The channel approval requests and notifications go to (an id such as C0123456789, or #name). */
  SLACK_CHANNEL: z.optional(z.string().check(z.minLength(1))),
  /** Slack's Web API base, https://slack.com/api/ unless a test or proxy stands in. */
  SLACK_API_URL: z.optional(z.url()),
  /** A chat robot's incoming webhook: dingtalk, feishu (Lark) or wecom, its URL and (DingTalk, Feishu) its signing secret. */
  HOIST_ROBOT_KIND: z.optional(z.enum(["dingtalk", "feishu", "wecom"])),
  HOIST_ROBOT_URL: z.optional(z.url()),
  HOIST_ROBOT_SECRET: z.optional(z.string().check(z.minLength(1))),
  /** How often the local runtime's scheduler looks for due `on.schedule` slots (on AWS: every minute). */
  HOIST_CRON_EVERY_MS: ms(60_000),
});

export type Config = z.output<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

function parse<S extends z.core.$ZodType>(schema: S, env: Env): z.output<S> {
  const result = z.safeParse(schema, env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
}

/** The service's settings; a bad value throws a ConfigError naming each variable. */
export function loadConfig(env: Env = processEnv()): Config {
  const config = parse(ConfigSchema, env);
  buildEngineOf(config);
  return config;
}

/** An AWS identity's keys, for a runtime where the SDK finds none itself (a Worker). */
export interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const edgeSetting = (what: string) => ({ error: `${what} (README, Serverless: Edge ingress)` });

/**
 * What the webhook needs at the edge (functions/edge.ts) besides the service's settings: the
 * stack's table and queue by name, as nothing is created from there, and an AWS identity's
 * keys, which a Worker has no other way to find.
 */
const EdgeSchema = z.object({
  HOIST_TABLE: z.string(edgeSetting("is the stack's TableName output: set it in wrangler.toml's [vars]")).check(z.minLength(3)),
  HOIST_QUEUE_URL: z.url(edgeSetting("is the stack's QueueUrl output: set it in wrangler.toml's [vars]")),
  AWS_ACCESS_KEY_ID: z.string(edgeSetting("is the edge identity's access key: `npx wrangler secret put AWS_ACCESS_KEY_ID`")).check(z.minLength(16, "is not an access key id")),
  AWS_SECRET_ACCESS_KEY: z.string(edgeSetting("is the edge identity's secret key: `npx wrangler secret put AWS_SECRET_ACCESS_KEY`")).check(z.minLength(1)),
  AWS_SESSION_TOKEN: z.optional(z.string().check(z.minLength(1))),
});

/** The webhook's settings on a Worker, from its bindings (wrangler.toml's [vars] and its secrets). */
export function loadEdgeConfig(bindings: Readonly<Record<string, unknown>>): { config: Config; credentials: AwsKeys } {
  // A Worker's bindings may also hold objects (KV namespaces, queues): the settings are its texts.
  const env: Env = Object.fromEntries(Object.entries(bindings).filter((e): e is [string, string] => typeof e[1] === "string"));
  const edge = parse(EdgeSchema, env);
  return {
    config: loadConfig(env),
    credentials: { accessKeyId: edge.AWS_ACCESS_KEY_ID, secretAccessKey: edge.AWS_SECRET_ACCESS_KEY, ...(edge.AWS_SESSION_TOKEN ? { sessionToken: edge.AWS_SESSION_TOKEN } : {}) },
  };
}

/**
 * The builder's engine and its credentials from HOIST_BUILD_ENGINE*, checked as an environment's
 * engine is (TLS for a remote tcp://, a pinned host key for ssh://). Unset: DOCKER_HOST, else the local socket.
 */
export function buildEngineOf(config: Config): EngineAccess {
  const c = config;
  const tls = c.HOIST_BUILD_ENGINE_TLS_CA || c.HOIST_BUILD_ENGINE_TLS_CERT || c.HOIST_BUILD_ENGINE_TLS_KEY;
  const ssh = c.HOIST_BUILD_ENGINE_SSH_KEY || c.HOIST_BUILD_ENGINE_SSH_HOST_KEY;
  const r = EngineAccess.safeParse({
    endpoint: c.HOIST_BUILD_ENGINE ?? c.DOCKER_HOST ?? LOCAL_ENGINE,
    ...(tls ? { tls: { ca: c.HOIST_BUILD_ENGINE_TLS_CA ?? "", cert: c.HOIST_BUILD_ENGINE_TLS_CERT ?? "", key: c.HOIST_BUILD_ENGINE_TLS_KEY ?? "" } } : {}),
    ...(ssh ? { ssh: { key: c.HOIST_BUILD_ENGINE_SSH_KEY ?? "", hostKey: c.HOIST_BUILD_ENGINE_SSH_HOST_KEY ?? "" } } : {}),
  });
  if (r.success) return r.data;
  const name = (path: PropertyKey[]) => `HOIST_BUILD_ENGINE${path.length ? `_${path.map(String).join("_").replace("hostKey", "HOST_KEY").toUpperCase()}` : ""}`;
  throw new ConfigError(`invalid configuration:\n${r.error.issues.map((i) => `  ${name(i.path.filter((p) => p !== "endpoint"))}: ${i.message}`).join("\n")}`);
}

/** What the `hoist` command line reads besides its flags. */
export const CliConfigSchema = z.object({
  /** A running Hoist to talk to; unset, commands talk to a local `hoist start`. */
  HOIST_URL: z.optional(z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL, e.g. http://127.0.0.1:8080" })),
  HOIST_API_TOKEN: z.optional(z.string().check(z.minLength(1))),
  /** https://no-color.org: set (and not empty) turns colour off. */
  NO_COLOR: z.pipe(
    z.optional(z.string()),
    z.transform((s) => s !== undefined),
  ),
  TERM: z.optional(z.string()),
  /** For `hoist demo --url`: one of that server's webhook secrets, to sign the push. */
  GITHUB_WEBHOOK_SECRET: list,
  /** Where an in-process `hoist demo` pushes. */
  HOIST_REGISTRY: z._default(z.string().check(z.minLength(1)), LOCAL_REGISTRY),
  DOCKER_HOST: z.optional(z.string()),
  HOIST_BUILDER_IMAGE: builderImage,
  /** Unset, the in-process runtime of `hoist demo` only speaks up when something is wrong. */
  HOIST_LOG_LEVEL: z.optional(logLevel),
});

export type CliConfig = z.output<typeof CliConfigSchema>;

/** A variable set to "" in a shell counts as unset, as the CLI always treated it. */
export function loadCliConfig(env: Env = processEnv()): CliConfig {
  return parse(CliConfigSchema, Object.fromEntries(Object.entries(env).filter(([, v]) => v !== "")));
}

/**
 * The AWS SDK prints a notice about its future Node versions on a client's first use; in
 * the command line's output it says nothing about the command. The SDK reads the switch
 * from the environment, so that is where it is set.
 */
export function quietAwsSdkNotices(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
}

/** Values that must never reach a log line, a run record or a page. */
export function secretsOf(config: Config): string[] {
  return [...config.GITHUB_WEBHOOK_SECRET, ...config.GITLAB_WEBHOOK_TOKEN, config.HOIST_API_TOKEN, config.GITHUB_TOKEN, config.GITLAB_TOKEN, config.HOIST_LINK_SECRET, config.SLACK_BOT_TOKEN, config.SLACK_SIGNING_SECRET, config.HOIST_ROBOT_SECRET].filter(
    (s): s is string => typeof s === "string" && s.length > 0,
  );
}
