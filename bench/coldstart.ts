// bench/coldstart: each Lambda bundle's size, and the time from a fresh Node process to its
// first answer on its sample event (events/), against real dynalite and local-aws-sqs through
// the AWS SDK, as on AWS: what a cold start costs before Lambda's own share. Two baselines run
// in the same rounds: the same fresh process answering from an empty handler (what any function
// pays for Node and the runner alone), and from a bundle of nothing but the AWS SDK's DynamoDB
// and SQS clients (the floor for a function that reaches the table and the queue through the
// SDK). Rounds alternate so the machine's drift hits all.
//
//   npm run bench:coldstart -- [--rounds 7]
import { spawn } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bundleForLambda, bundleFunctions } from "../lib/bundles/bundle.ts";
import { WEBHOOK_BUDGET_BYTES, type LambdaFunction } from "../lib/bundles/functions.ts";
import { invokeFunction } from "../lib/cli/invoke.ts";
import type { Env } from "../lib/config.ts";
import { startServers } from "../lib/local/servers.mjs";

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
  GITHUB_WEBHOOK_SECRET: "bench-coldstart-webhook-secret",
  SLACK_SIGNING_SECRET: "bench-coldstart-slack-secret",
  HOIST_API_TOKEN: "bench-coldstart-api-token",
};

/** Milliseconds from spawning a fresh process to its answer: the function's, and its import and handler parts. */
async function cold(name: LambdaFunction): Promise<{ total: number; imported: number; handler: number }> {
  const answer = await invokeFunction(name, { event: join(ROOT, "events", `${SAMPLES[name]}.json`), env, bundle: true, logs: () => undefined });
  if (!answer.ok) throw new Error(`${name}: ${answer.error.name}: ${answer.error.message}`);
  return { total: answer.totalMs, imported: answer.ms.import, handler: answer.ms.handler };
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
await writeFile(join(dir, "event.json"), "{}");
async function bare(module: string): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "lib/local/invoke-runner.mjs"), module, join(dir, "event.json"), join(dir, "answer.json"), "bare"], { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", () => resolve());
  });
  const ms = performance.now() - started;
  if (!(JSON.parse(await readFile(join(dir, "answer.json"), "utf8")) as { ok: boolean }).ok) throw new Error(`${module} did not answer`);
  return ms;
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
const loadBefore = load();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// Warm the page cache and make the table and queue: not timed.
await bare(empty);
await bare(sdk);
for (const name of names) await cold(name);
// As on AWS, where the stack gives the queue's URL: no function asks for it at its start.
env = { ...env, HOIST_QUEUE_URL: `${servers.sqs}/123456789012/bench-coldstart` };
const times = new Map<string, { total: number[]; imported: number[]; handler: number[] }>();
const base: number[] = [];
const floor: number[] = [];
for (let i = 0; i < rounds; i++) {
  base.push(await bare(empty));
  floor.push(await bare(sdk));
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
await servers.close();

console.log(`\nfresh process to first answer, median of ${rounds} (through the AWS SDK to local dynalite and local-aws-sqs):`);
console.log(`${"function".padEnd(10)} ${"bundle".padStart(9)} ${"total".padStart(8)} ${"import".padStart(8)} ${"handler".padStart(8)} ${"vs empty".padStart(9)}`);
const baseMs = median(base);
console.log(`${"(empty)".padEnd(10)} ${"".padStart(9)} ${`${baseMs.toFixed(0)} ms`.padStart(8)}`);
const floorMs = median(floor);
console.log(`${"(SDK only)".padEnd(10)} ${`${(sdkBytes / 1024).toFixed(0)} KiB`.padStart(9)} ${`${floorMs.toFixed(0)} ms`.padStart(8)} ${"".padStart(8)} ${"".padStart(8)} ${`${(floorMs / baseMs).toFixed(2)}x`.padStart(9)}`);
for (const name of names) {
  const row = times.get(name)!;
  const kib = `${(bundles.find((b) => b.name === name)!.bytes / 1024).toFixed(0)} KiB`;
  const total = median(row.total);
  console.log(`${name.padEnd(10)} ${kib.padStart(9)} ${`${total.toFixed(0)} ms`.padStart(8)} ${`${median(row.imported).toFixed(0)} ms`.padStart(8)} ${`${median(row.handler).toFixed(0)} ms`.padStart(8)} ${`${(total / baseMs).toFixed(2)}x`.padStart(9)}`);
}
const webhook = median(times.get("webhook")!.total);
const webhookBytes = bundles.find((b) => b.name === "webhook")!.bytes;
console.log(`\nwebhook: ${webhook.toFixed(0)} ms to its first answer (target <= ${TARGET_MS} ms: ${webhook <= TARGET_MS ? "met" : "not met"}; ${(webhook - floorMs).toFixed(0)} ms over the SDK-only floor); bundle ${(webhookBytes / 1024).toFixed(0)} KiB (budget ${WEBHOOK_BUDGET_BYTES / 1024} KiB: ${webhookBytes <= WEBHOOK_BUDGET_BYTES ? "within" : "over"})`);
console.log(`load average (1, 5, 15 min): ${loadBefore} before, ${load()} after`);
