// bench/coldstart: each Lambda bundle's size, and the time from a fresh Node process to its
// first answer on its sample event (events/), as on AWS: each function first reads the stack's
// secret (a local stand-in for Secrets Manager answers GetSecretValue), then answers through the
// AWS SDK against real dynalite and local-aws-sqs; the webhook, a push it has not seen before.
// Each time runs from the spawn to the moment the handler's answer exists (the runner's clock at
// the answer against this one's at the spawn): writing the answer down and the process's exit
// are the runner's, not the function's. Baselines in the same rounds: an empty handler (what any
// function pays for Node and the runner), a bundle of nothing but the SDK's DynamoDB and SQS
// clients (the floor for a function that reaches the table and the queue through the SDK), and
// the webhook with its settings in its environment (what the secret's read costs). Rounds
// alternate so the machine's drift hits all. The functions run on the Node that runs this;
// Lambda runs the stack's (24): to time that one, run the bench with it first on PATH.
//
//   npm run bench:coldstart -- [--rounds 7]
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bundleForLambda, bundleFunctions } from "../lib/bundles/bundle.ts";
import { WEBHOOK_BUDGET_BYTES, type LambdaFunction } from "../lib/bundles/functions.ts";
import { invokeFunction, invokeModule } from "../lib/cli/invoke.ts";
import { loadConfig, type Env } from "../lib/config.ts";
import { signSample } from "../lib/local/sign-sample.ts";
import { startServers } from "../lib/local/servers.mjs";
import { startAwsJsonApi } from "../test/support/aws-json-api.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "7" } } });
const rounds = Number(values.rounds);
const ROOT = join(import.meta.dirname, "..");
const TARGET_MS = 300;

/** Each function's sample: what a first request to a cold container would be. */
const SAMPLES: Record<LambdaFunction, string> = {
  webhook: "apigw/github-push",
  chat: "apigw/slack-action",
  api: "apigw/api-healthz",
  worker: "sqs/batch",
  reconcile: "schedule/reconcile",
  cron: "schedule/cron",
};
const names = Object.keys(SAMPLES) as LambdaFunction[];

const dir = await mkdtemp(join(tmpdir(), "hoist-bench-coldstart-"));
const [servers, bundles] = await Promise.all([startServers({}), bundleFunctions()]);
/** The settings the stack keeps in its Secrets Manager secret, which every function reads at its start. */
const SECRETS = {
  GITHUB_WEBHOOK_SECRET: "bench-coldstart-webhook-secret",
  SLACK_SIGNING_SECRET: "bench-coldstart-slack-secret",
  HOIST_API_TOKEN: "bench-coldstart-api-token",
};
const ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:HoistSecrets-bench0";
const recorded = JSON.parse(await readFile(join(ROOT, "events/aws/secretsmanager-get-secret-value.json"), "utf8")) as object;
const secretsManager = await startAwsJsonApi({ status: 200, body: JSON.stringify({ ...recorded, ARN, Name: "HoistSecrets", SecretString: JSON.stringify(SECRETS) }) });
let env: Env = {
  ...process.env,
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "local",
  AWS_SECRET_ACCESS_KEY: "local",
  AWS_ENDPOINT_URL_DYNAMODB: servers.dynamodb,
  AWS_ENDPOINT_URL_SQS: servers.sqs,
  HOIST_AWS_TRANSPORT: "sdk",
  HOIST_TABLE: "bench-coldstart",
  HOIST_QUEUE: "bench-coldstart",
  HOIST_DATA_DIR: dir,
  HOIST_LOG_LEVEL: "error",
  HOIST_SECRETS_ARN: ARN,
  AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.endpoint,
  // The SDK warns once on Node 20 that it will need 22 (a write to stderr); Lambda runs 24.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};

/** Milliseconds from spawning a fresh process to its answer: the function's, and its import and handler parts. */
async function cold(name: LambdaFunction, on: Env = env): Promise<{ total: number; imported: number; handler: number }> {
  const answer = await invokeFunction(name, { event: await signed(SAMPLES[name]), sign: false, env: on, bundle: true, logs: () => undefined });
  if (!answer.ok) throw new Error(`${name}: ${answer.error.name}: ${answer.error.message}`);
  const status = (answer.result as { statusCode?: number } | null)?.statusCode;
  if (status !== undefined && status >= 300) throw new Error(`${name} answered ${status}: ${JSON.stringify(answer.result)}`);
  return { total: answer.totalMs, imported: answer.ms.import, handler: answer.ms.handler };
}

/**
 * The sample signed with the secret's settings (the functions find them only in the secret), and
 * as a delivery never seen before when it is one: a redelivery is answered from the table.
 */
async function signed(sample: string): Promise<string> {
  const event = JSON.parse(await readFile(join(ROOT, "events", `${sample}.json`), "utf8")) as { headers?: Record<string, string> };
  const fresh = event.headers?.["x-github-delivery"] ? { ...event, headers: { ...event.headers, "x-github-delivery": randomUUID() } } : event;
  const file = join(dir, "event-signed.json");
  await writeFile(file, JSON.stringify(await signSample(fresh, loadConfig({ ...env, ...SECRETS }))));
  return file;
}

// The baselines: the same runner in a fresh process, on a module that answers at once, and on
// one that first makes the SDK's two clients, bundled as the functions are.
const empty = join(dir, "empty.mjs");
await writeFile(empty, "export const handler = async () => ({ statusCode: 200, body: '' });\n");
await writeFile(
  join(dir, "sdk.ts"),
  'import { DynamoDBClient } from "@aws-sdk/client-dynamodb";\nimport { SQSClient } from "@aws-sdk/client-sqs";\n' +
    'const clients = [new DynamoDBClient({ region: "us-east-1" }), new SQSClient({ region: "us-east-1" })];\n' +
    "export const handler = async () => ({ statusCode: 200, body: String(clients.length) });\n",
);
const sdk = join(dir, "sdk", "index.mjs");
const sdkBytes = await bundleForLambda(join(dir, "sdk.ts"), sdk);
/** Milliseconds from spawning a fresh process to the answer of `module`'s handler. */
async function bare(module: string): Promise<number> {
  const answer = await invokeModule(module, {}, { name: "bare", env, logs: () => undefined });
  if (!answer.ok) throw new Error(`${module} did not answer: ${answer.error.message}`);
  return answer.totalMs;
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
const loadBefore = load();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// Warm the page cache and make the table and queue: not timed.
await bare(empty);
await bare(sdk);
for (const name of names) await cold(name);
// As on AWS, where the stack gives the queue's URL: no function asks for it, nor checks the
// table, at its start (lib/core-services.ts).
env = { ...env, HOIST_QUEUE_URL: `${servers.sqs}/123456789012/bench-coldstart` };
// What the secret's read costs the webhook: the same, its settings in its environment instead.
const { HOIST_SECRETS_ARN: _arn, ...unsecret } = env;
const inEnv = { ...unsecret, ...SECRETS };
const times = new Map<string, { total: number[]; imported: number[]; handler: number[] }>();
const base: number[] = [];
const floor: number[] = [];
const noSecret: number[] = [];
for (let i = 0; i < rounds; i++) {
  base.push(await bare(empty));
  floor.push(await bare(sdk));
  noSecret.push((await cold("webhook", inEnv)).total);
  for (const name of names) {
    const t = await cold(name);
    const row = times.get(name) ?? { total: [], imported: [], handler: [] };
    row.total.push(t.total);
    row.imported.push(t.imported);
    row.handler.push(t.handler);
    times.set(name, row);
  }
  console.log(`round ${i + 1}: empty ${base[i]!.toFixed(0)} ms, SDK clients ${floor[i]!.toFixed(0)} ms, webhook ${times.get("webhook")!.total[i]!.toFixed(0)} ms`);
}
await Promise.all([servers.close(), secretsManager.close()]);

console.log(`\nfresh process to first answer, median of ${rounds} (through the AWS SDK to local dynalite and local-aws-sqs):`);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
const ms = (x: number) => `${x.toFixed(0)} ms`;
const row = (cells: string[]) => console.log([cells[0]!.padEnd(10), ...cells.slice(1).map((c, i) => c.padStart(i < 2 ? 9 : 8))].join(" "));
row(["function", "bundle", "at start", "total", "import", "handler", "vs empty"]);
const baseMs = median(base);
row(["(empty)", "", "", ms(baseMs)]);
const floorMs = median(floor);
row(["(SDK only)", kib(sdkBytes.bytes), kib(sdkBytes.startBytes), ms(floorMs), "", "", `${(floorMs / baseMs).toFixed(2)}x`]);
for (const name of names) {
  const t = times.get(name)!;
  const bundle = bundles.find((b) => b.name === name)!;
  const total = median(t.total);
  row([name, kib(bundle.bytes), kib(bundle.startBytes), ms(total), ms(median(t.imported)), ms(median(t.handler)), `${(total / baseMs).toFixed(2)}x`]);
}
const webhook = median(times.get("webhook")!.total);
console.log(`\nwebhook with its settings in its environment, no secret to read: ${ms(median(noSecret))} (the secret's read: ${ms(webhook - median(noSecret))})`);
const webhookBytes = bundles.find((b) => b.name === "webhook")!.bytes;
console.log(`webhook: ${webhook.toFixed(0)} ms to its first answer (target <= ${TARGET_MS} ms: ${webhook <= TARGET_MS ? "met" : "not met"}; ${(webhook - floorMs).toFixed(0)} ms over the SDK-only floor); bundle ${(webhookBytes / 1024).toFixed(0)} KiB (budget ${WEBHOOK_BUDGET_BYTES / 1024} KiB: ${webhookBytes <= WEBHOOK_BUDGET_BYTES ? "within" : "over"})`);
console.log(`load average (1, 5, 15 min): ${loadBefore} before, ${load()} after`);
