import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type Config } from "../../lib/config.ts";
import { startServers, type StartedServers } from "../../lib/local/servers.mjs";
import { createServices, type ServiceOverrides, type Services } from "../../lib/services.ts";
import { uniqueSuffix } from "./docker.ts";

/**
 * Real dynalite and local-aws-sqs servers on free loopback ports, started in the test
 * process, plus services wired to them with a fresh table and queue per call.
 */
export async function startAwsServers(): Promise<StartedServers> {
  return startServers({});
}

export async function servicesOn(servers: StartedServers, env: Record<string, string> = {}, overrides: ServiceOverrides = {}): Promise<Services> {
  const config: Config = loadConfig({
    HOIST_TABLE: `t-${uniqueSuffix()}`,
    HOIST_QUEUE: `q-${uniqueSuffix()}`,
    HOIST_LOG_LEVEL: "silent",
    AWS_ENDPOINT_URL_DYNAMODB: servers.dynamodb,
    AWS_ENDPOINT_URL_SQS: servers.sqs,
    HOIST_DATA_DIR: await mkdtemp(join(tmpdir(), "hoist-data-")),
    ...env,
  });
  return createServices(config, overrides);
}
