import type { Command } from "commander";
import { buildEngineOf, ConfigError, loadConfig, processEnv, type Config } from "../config.ts";
import type { LocalRuntime } from "../local/runtime.ts";
import { checkEngine, checkRegistry } from "./checks.ts";
import { SERVICES_HINT, type CliContext } from "./context.ts";
import { formatDuration } from "./format.ts";
import { CliError, isEcho, type Output } from "./output.ts";
import { startRuntime } from "./runtime.ts";

/** `hoist start`: every function in this process, in the foreground, until a signal. */
export function registerStart(program: Command, ctx: CliContext): void {
  program
    .command("start")
    .description("run Hoist in the foreground: webhooks + API, worker, reconciler (settings from the environment)")
    .action(() => startCommand(ctx.out));
}

async function startCommand(out: Output): Promise<void> {
  const env = processEnv();
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`${err.message}\nfix the environment variables above and run \`hoist start\` again`);
    throw err;
  }
  const engine = await checkEngine(buildEngineOf(config));
  if (!engine.ok) out.warn(`${engine.problem}: runs will fail until it answers; ${SERVICES_HINT}`);
  if (config.HOIST_REGISTRY) {
    const reg = await checkRegistry(config.HOIST_REGISTRY);
    if (!reg.ok) out.warn(`${reg.problem}: push stages will fail until it answers; ${SERVICES_HINT}`);
  }

  const runtime = await startRuntime(env, config.HOIST_PORT, out);
  out.print(`${out.paint("green", "hoist is running at")} ${out.paint("bold", runtime.url)}`);
  out.print(settingsSummary(config, runtime, out));
  out.print(out.paint("dim", "press Ctrl+C to stop"));

  await new Promise<void>((resolve) => {
    let stoppingSince = 0;
    const stop = (signal: NodeJS.Signals) => {
      if (stoppingSince) {
        if (isEcho(stoppingSince)) return;
        out.warn(`${signal} again: exiting without a clean stop`);
        process.exit(1);
      }
      stoppingSince = Date.now();
      out.print(out.paint("dim", `${signal}: stopping…`));
      runtime.stop().then(
        () => {
          out.print("stopped");
          resolve();
        },
        (err: unknown) => {
          out.warn(`stop failed: ${(err as Error).message}`);
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

/** Which settings are in effect; secrets only as set / not set. */
function settingsSummary(c: Config, runtime: LocalRuntime, out: Output): string {
  const { url } = runtime;
  const live = runtime.services.config;
  const set = (v: unknown) => (v ? out.paint("green", "set") : out.paint("yellow", "not set"));
  const count = (xs: readonly string[]) => (xs.length ? out.paint("green", xs.length === 1 ? "set" : `set (${xs.length})`) : out.paint("yellow", "not set"));
  const embedded = !(c.AWS_ENDPOINT_URL_DYNAMODB && (c.AWS_ENDPOINT_URL_SQS || c.HOIST_QUEUE_URL));
  const rows: [string, string][] = [
    ["webhooks", `${url}/hooks/github, ${url}/hooks/gitlab`],
    ["API", `${url}/api/runs`],
    [
      "data",
      embedded
        ? `${c.HOIST_DATA_DIR} (embedded DynamoDB at ${live.AWS_ENDPOINT_URL_DYNAMODB}, SQS at ${live.AWS_ENDPOINT_URL_SQS})`
        : `DynamoDB at ${c.AWS_ENDPOINT_URL_DYNAMODB}, SQS at ${c.HOIST_QUEUE_URL ?? c.AWS_ENDPOINT_URL_SQS}`,
    ],
    ["table / queue", `${c.HOIST_TABLE} / ${c.HOIST_QUEUE}`],
    ["HOIST_API_TOKEN", c.HOIST_API_TOKEN ? set(true) : `${set(false)} (the API answers 503)`],
    ["GITHUB_WEBHOOK_SECRET", c.GITHUB_WEBHOOK_SECRET.length ? count(c.GITHUB_WEBHOOK_SECRET) : `${set(false)} (GitHub webhooks answer 503)`],
    ["GITLAB_WEBHOOK_TOKEN", c.GITLAB_WEBHOOK_TOKEN.length ? count(c.GITLAB_WEBHOOK_TOKEN) : `${set(false)} (GitLab webhooks answer 503)`],
    ["GITHUB_TOKEN", set(c.GITHUB_TOKEN)],
    ["GITLAB_TOKEN", set(c.GITLAB_TOKEN)],
    ["HOIST_REGISTRY", c.HOIST_REGISTRY ?? `${out.paint("yellow", "not set")} (push stages must name a registry)`],
    ["HOIST_ALLOW_LOCAL_REPOS", c.HOIST_ALLOW_LOCAL_REPOS ? "yes (file:// repositories accepted)" : "no"],
    ["HOIST_BUILD_ENGINE", `${buildEngineOf(c).endpoint}${c.HOIST_BUILD_ENGINE ? "" : c.DOCKER_HOST ? " (DOCKER_HOST)" : " (default)"}`],
    ["HOIST_BUILDER_IMAGE", c.HOIST_BUILDER_IMAGE],
    ["worker", `${c.HOIST_WORKER_CONCURRENCY} at a time, lease ${formatDuration(c.HOIST_LEASE_MS)}, step budget ${formatDuration(c.HOIST_STEP_BUDGET_MS)}`],
    ["reconciler", `every ${formatDuration(c.HOIST_RECONCILE_EVERY_MS)}, re-drive after ${formatDuration(c.HOIST_REDRIVE_AFTER_MS)}`],
    ["HOIST_LOG_LEVEL", c.HOIST_LOG_LEVEL],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${out.paint("dim", k.padEnd(width))}  ${v}`).join("\n");
}
