import { ulid } from "ulid";
import type { Clock } from "./clock.ts";
import { awsApis } from "./aws/apis.ts";
import type { SettleDeps } from "./chat/settle.ts";
import { decide } from "./runs/approve.ts";
import type { AwsApis } from "./aws/sdk-apis.ts";
import { createCoreServices, type CoreServices } from "./core-services.ts";
import { buildEngineOf, secretsOf, type Config } from "./config.ts";
import { DockerEngine } from "./engine/docker.ts";
import type { Engine } from "./engine/port.ts";
import { redactor, type Logger } from "./log.ts";
import type { AdvanceDeps } from "./runs/advance.ts";
import { ConfigCache } from "./runs/config-cache.ts";
import type { ReconcileDeps } from "./runs/reconcile.ts";
import type { ResolveDeps } from "./runs/resolve-delivery.ts";
import type { WatchDeps } from "./release/watch.ts";
import type { SourceReader } from "./scm/port.ts";
import { createSourceRouter } from "./scm/source.ts";
import { registryAccess } from "./registry/access.ts";
import type { Environment } from "./release/environment.ts";
import { releaseContext } from "./release/targets.ts";
import { fanOut, type ChannelNotifier } from "./chat/fan-out.ts";
import { RobotNotifier } from "./chat/robot-notifier.ts";
import { SlackNotifier } from "./chat/slack-notifier.ts";
import { SlackAdapter } from "./chat/slack.ts";
import type { Run } from "./pipeline/run.ts";
import { peopleObserver } from "./runs/notices.ts";
import type { RunObserver } from "./runs/observer.ts";
import type { StartDeps } from "./runs/start-run.ts";
import { createRunReporter, type RunReporter } from "./scm/report.ts";
import { DynamoRunStore } from "./store/dynamo.ts";
import { DynamoOnceStore } from "./store/dynamo-once.ts";
import { DynamoScheduleStore } from "./store/dynamo-schedules.ts";
import type { CronDeps } from "./runs/cron.ts";
import { DynamoRegistryStore } from "./store/dynamo-registries.ts";
import { DynamoReleaseStore } from "./store/dynamo-releases.ts";
import { DynamoVariableStore } from "./store/dynamo-variables.ts";

/** Everything a function needs, built once per process from the config. */
export interface Services extends CoreServices {
  /** Runs: their records, leases and logs. */
  store: DynamoRunStore;
  /** Environments, release history and release leases. */
  releases: DynamoReleaseStore;
  /** Registries and their credentials. */
  registries: DynamoRegistryStore;
  /** Environments' variables and secrets. */
  variables: DynamoVariableStore;
  engine: Engine;
  source: SourceReader;
  /** Worker dependencies for turning a delivery into runs. */
  resolve: ResolveDeps;
  /** Slack clicks, which the chat route hands to a worker through the queue. */
  settle: SettleDeps;
  reconcile: ReconcileDeps;
  watch: WatchDeps;
  /** Worker dependencies; each worker process gets its own lease identity. */
  advance: AdvanceDeps;
  /** Commit statuses and chat messages as runs change. */
  observer: RunObserver;
  /** Slack's, robots' and the API's way to a run's approval gate. */
  people: { slack?: SlackAdapter; once: DynamoOnceStore; reporter: RunReporter };
  /** `on.schedule` entries, and what the scheduler needs to fire them. */
  schedules: DynamoScheduleStore;
  cron: CronDeps;
  /** Manual runs: what POST /api/pipelines/:repo/:pipeline/runs needs. */
  trigger: StartDeps & { resolveRef: SourceReader["resolveRef"] };
}

export interface ServiceOverrides {
  clock?: Clock;
  engine?: Engine;
  source?: SourceReader;
  log?: Logger;
  /** Wraps the table's and the queue's APIs (bench/cost counts the requests a run makes). */
  wrapAws?: (apis: AwsApis) => AwsApis;
}

/** Composition root: real clients from the config, with test seams for clock, engine and source. */
export async function createServices(config: Config, overrides: ServiceOverrides = {}): Promise<Services> {
  const secrets = secretsOf(config);
  const apis = awsApis(config);
  const core = await createCoreServices(config, overrides.wrapAws?.(apis) ?? apis, overrides);
  const { log, clock, dynamo, deliveries, queue } = core;
  const store = new DynamoRunStore({ api: dynamo, table: config.HOIST_TABLE });
  const engine = overrides.engine ?? new DockerEngine({ access: buildEngineOf(config) });
  const source =
    overrides.source ??
    createSourceRouter({
      allowLocalRepos: config.HOIST_ALLOW_LOCAL_REPOS,
      ...(config.GITHUB_TOKEN ? { githubToken: config.GITHUB_TOKEN } : {}),
      ...(config.GITHUB_API_URL ? { githubApiUrl: config.GITHUB_API_URL } : {}),
      // Reads happen in workers, off any webhook request: a slow provider is waited on this long.
      timeoutMs: PROVIDER_TIMEOUT_MS,
      ...(config.GITLAB_TOKEN ? { gitlabToken: config.GITLAB_TOKEN } : {}),
      ...(config.GITLAB_URL ? { gitlabUrl: config.GITLAB_URL } : {}),
    });
  const redriveAfterMs = config.HOIST_REDRIVE_AFTER_MS;
  const releases = new DynamoReleaseStore(dynamo, config.HOIST_TABLE);
  const registries = new DynamoRegistryStore(dynamo, config.HOIST_TABLE);
  const variables = new DynamoVariableStore(dynamo, config.HOIST_TABLE, clock);
  const registry = registryAccess(registries, { ecrEndpoint: config.AWS_ENDPOINT_URL_ECR });
  const contextFor = (env: Environment, log: (line: string) => void) => ({
    ...releaseContext(env, log, registry.login),
    // Compose secrets read their values when a release starts the containers, never earlier.
    variables: async () => new Map((await variables.variableValues(env.name)).map((v) => [v.name, v.value] as const)),
  });
  const publicUrl = (config.HOIST_PUBLIC_URL ?? `http://127.0.0.1:${config.HOIST_PORT}`).replace(/\/+$/, "");
  const runUrl = (run: Run) => `${publicUrl}/api/runs/${run.id}`;
  const reporter = createRunReporter({
    ...(config.GITHUB_TOKEN ? { github: { token: config.GITHUB_TOKEN, ...(config.GITHUB_API_URL ? { baseUrl: config.GITHUB_API_URL } : {}) } } : {}),
    ...(config.GITLAB_TOKEN ? { gitlab: { token: config.GITLAB_TOKEN, ...(config.GITLAB_URL ? { baseUrl: config.GITLAB_URL } : {}) } } : {}),
    runUrl,
    log,
  });
  const slack = config.SLACK_BOT_TOKEN ? new SlackAdapter({ token: config.SLACK_BOT_TOKEN, log, ...(config.SLACK_API_URL ? { apiUrl: config.SLACK_API_URL } : {}) }) : undefined;
  const channels: ChannelNotifier[] = [];
  if (slack && config.SLACK_CHANNEL) channels.push({ channel: "slack", notifier: new SlackNotifier(slack, config.SLACK_CHANNEL) });
  if (config.HOIST_ROBOT_KIND && config.HOIST_ROBOT_URL)
    channels.push({
      channel: config.HOIST_ROBOT_KIND,
      notifier: new RobotNotifier({
        kind: config.HOIST_ROBOT_KIND,
        url: config.HOIST_ROBOT_URL,
        publicUrl,
        clock,
        ...(config.HOIST_ROBOT_SECRET ? { secret: config.HOIST_ROBOT_SECRET } : {}),
        ...(config.HOIST_LINK_SECRET ? { linkSecret: config.HOIST_LINK_SECRET } : {}),
      }),
    });
  const observer = peopleObserver({ reporter, ...(channels.length ? { chat: fanOut(channels, { log }) } : {}), runUrl });
  const configs = new ConfigCache(source);
  const schedules = new DynamoScheduleStore(dynamo, config.HOIST_TABLE);
  const registryDefault = config.HOIST_REGISTRY ? { registry: config.HOIST_REGISTRY } : {};
  return {
    ...core,
    store,
    observer,
    people: { ...(slack ? { slack } : {}), once: new DynamoOnceStore(dynamo, config.HOIST_TABLE, clock), reporter },
    trigger: { store, queue, clock, configs, redriveAfterMs, observer, resolveRef: (repo, ref) => source.resolveRef(repo, ref), ...registryDefault },
    schedules,
    cron: { schedules, store, queue, clock, configs, source, log, redriveAfterMs, observer, ...registryDefault },
    releases,
    registries,
    variables,
    engine,
    source,
    resolve: {
      deliveries,
      store,
      queue,
      clock,
      log,
      configs,
      redriveAfterMs,
      patienceMs: DELIVERY_PATIENCE_MS,
      observer,
      schedules,
      ...registryDefault,
    },
    settle: { ...(slack ? { slack } : {}), decide: (req) => decide({ store, queue, clock, observer }, req), clock, log },
    reconcile: { store, deliveries, releases, queue, clock, redriveAfterMs },
    watch: { store: releases, now: () => clock.now(), contextFor },
    advance: {
      store,
      queue,
      clock,
      engine,
      source,
      log,
      redact: redactor(secrets),
      workerId: `w-${ulid()}`,
      builderImage: config.HOIST_BUILDER_IMAGE,
      registry,
      leaseMs: config.HOIST_LEASE_MS,
      budgetMs: config.HOIST_STEP_BUDGET_MS,
      redriveAfterMs,
      observer,
      releases: { store: releases, source, now: () => clock.now(), leaseMs: config.HOIST_RELEASE_LEASE_MS, contextFor, variables },
    },
  };
}

/** The longest one call to GitHub's or GitLab's API may take before it counts as an outage. */
const PROVIDER_TIMEOUT_MS = 60_000;

/** How long a provider that keeps failing is asked for a delivery's `.hoist.yml` before the delivery fails. */
const DELIVERY_PATIENCE_MS = 60 * 60_000;
