import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isBuiltin } from "node:module";
import { dirname, join } from "node:path";
import { DescribeTableCommand, DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleFunctions } from "../../lib/bundles/bundle.ts";
import { LAMBDA_FUNCTIONS, WEBHOOK_BUDGET_BYTES, type LambdaFunction } from "../../lib/bundles/functions.ts";
import { invokeFunction, type InvokeAnswer } from "../../lib/cli/invoke.ts";
import type { Env } from "../../lib/config.ts";
import { startLocal, type LocalRuntime } from "../../lib/local/runtime.ts";
import { startServers, type StartedServers } from "../../lib/local/servers.mjs";
import type { Bundle } from "../../lib/bundles/bundle.ts";
import { uniqueSuffix } from "../support/docker.ts";

/**
 * Every function's Lambda handler, run as Lambda runs it: in a fresh Node process, on the
 * samples in events/, against real dynalite and local-aws-sqs. The bundles go through the
 * AWS SDK (HOIST_AWS_TRANSPORT=sdk), as on AWS; `hoist invoke` runs the sources against a
 * local runtime it finds by its runtime.json.
 */

const SECRETS = {
  GITHUB_WEBHOOK_SECRET: "gh-secret-for-functions-test",
  GITLAB_WEBHOOK_TOKEN: "gl-token-for-functions-test",
  HOIST_API_TOKEN: "api-token-for-functions-test",
  SLACK_SIGNING_SECRET: "slack-secret-for-functions-test",
  HOIST_LINK_SECRET: "link-secret-for-functions-test-0123456789abcdef",
};
const AWS = { AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local" };
/** The sample batch's second message wakes this run; its record is made unreadable below. */
const POISONED_RUN = "r0fails0fails0fails0fails0";
const POISONED_MESSAGE = "2e1424d4-f796-459a-8184-9c92662be6da";

/** Each sample, the function it is for, and what that function answers when all is well. */
const SAMPLES: [LambdaFunction, string, (a: Extract<InvokeAnswer, { ok: true }>["result"]) => void][] = [
  ["webhook", "apigw/github-push", (r) => expect(r).toMatchObject({ statusCode: 202, body: expect.stringContaining('"duplicate":false') })],
  ["webhook", "apigw/github-ping", (r) => expect(r).toMatchObject({ statusCode: 200, body: expect.stringContaining('"pong"') })],
  ["webhook", "apigw/gitlab-push", (r) => expect(r).toMatchObject({ statusCode: 202 })],
  ["webhook", "apigw/gitlab-tag-push", (r) => expect(r).toMatchObject({ statusCode: 202 })],
  ["chat", "apigw/slack-action", (r) => expect(r).toMatchObject({ statusCode: 200 })],
  ["chat", "apigw/robot-link-get", (r) => expect(r).toMatchObject({ statusCode: 200, body: expect.stringContaining("Approve run r25wejpppqbzdnd9q8vsh0es5 stage 3 as alice?") })],
  ["chat", "apigw/robot-link-post", (r) => expect(r).toMatchObject({ statusCode: 404, body: expect.stringContaining("No such run") })],
  ["api", "apigw/api-list-runs", (r) => expect(r).toMatchObject({ statusCode: 200, body: expect.stringContaining('"runs"') })],
  ["api", "apigw/api-get-run", (r) => expect(r).toMatchObject({ statusCode: 404 })],
  ["api", "apigw/api-healthz", (r) => expect(r).toMatchObject({ statusCode: 200, body: '{"ok":true}' })],
  ["worker", "sqs/batch", (r) => expect(r).toEqual({ batchItemFailures: [{ itemIdentifier: POISONED_MESSAGE }] })],
  ["reconcile", "schedule/reconcile", (r) => expect(r).toMatchObject({ redriven: expect.any(Array), routersChanged: [] })],
  ["cron", "schedule/cron", (r) => expect(r).toMatchObject({ started: [], failed: [] })],
];

const event = (sample: string) => join(import.meta.dirname, "../../events", `${sample}.json`);

let servers: StartedServers;
let bundles: Bundle[];

beforeAll(async () => {
  [servers, bundles] = await Promise.all([startServers({}), bundleFunctions()]);
});
afterAll(async () => {
  await servers.close();
});

/** A function's environment on a table and queue of its own, with the poisoned run in place. */
async function environment(): Promise<Env> {
  const env: Env = {
    ...process.env,
    ...SECRETS,
    ...AWS,
    HOIST_TABLE: `fn-${uniqueSuffix()}`,
    HOIST_QUEUE: `fn-${uniqueSuffix()}`,
    AWS_ENDPOINT_URL_DYNAMODB: servers.dynamodb,
    AWS_ENDPOINT_URL_SQS: servers.sqs,
    HOIST_LOG_LEVEL: "error",
    HOIST_DATA_DIR: await mkdtemp(join(tmpdir(), "hoist-fn-")),
  };
  // The first answer makes the table; then the poisoned record goes in.
  await invokeFunction("api", { event: event("apigw/api-healthz"), env, bundle: true, logs: () => undefined });
  await new DynamoDBClient({ endpoint: servers.dynamodb, ...awsClient }).send(
    new PutItemCommand({ TableName: env.HOIST_TABLE, Item: { pk: { S: `RUN#${POISONED_RUN}` }, sk: { S: "RUN" }, data: { S: "{ not a run" }, version: { N: "1" } } }),
  );
  return env;
}
const awsClient = { region: AWS.AWS_REGION, credentials: { accessKeyId: "local", secretAccessKey: "local" } };

/** The bytes of the JavaScript under `dir`: an entry and its chunks. */
async function javascriptBytes(dir: string): Promise<number> {
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith(".mjs"));
  expect(files).toContain("index.mjs");
  const sizes = await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size));
  return sizes.reduce((a, b) => a + b, 0);
}

function ok(answer: InvokeAnswer): Extract<InvokeAnswer, { ok: true }>["result"] {
  if (!answer.ok) throw new Error(`${answer.error.name}: ${answer.error.message}`);
  return answer.result;
}

describe("the Lambda bundles", () => {
  it("are one per function, and the webhook's fits its budget", async () => {
    expect(bundles.map((b) => b.name).sort()).toEqual([...LAMBDA_FUNCTIONS].sort());
    expect((await readdir(join(import.meta.dirname, "../../events/apigw"))).length).toBeGreaterThanOrEqual(10);
    const webhook = bundles.find((b) => b.name === "webhook")!;
    expect(webhook.bytes, `the webhook bundle is ${webhook.bytes} bytes`).toBeLessThanOrEqual(WEBHOOK_BUDGET_BYTES);
  });

  it("leave classic zod off the webhook's path: its schemas are zod/mini's (lib/zod-mini.ts), for its cold start", () => {
    const webhook = bundles.find((b) => b.name === "webhook")!;
    expect(webhook.inputs.filter((f) => f.includes("node_modules/zod/v4/classic/"))).toEqual([]);
    expect(webhook.inputs.some((f) => f.includes("node_modules/zod/v4/mini/"))).toBe(true);
  });

  it("reach Node's built-ins through require, never an ES import (whose facade runs every getter: node:http's loads undici)", async () => {
    for (const bundle of bundles) {
      const dir = dirname(bundle.file);
      const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith(".mjs"));
      const texts = await Promise.all(files.map((f) => readFile(join(dir, f), "utf8")));
      const imported = texts.flatMap((text) => [...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]!)).filter((path) => isBuiltin(path));
      expect(imported, `${bundle.name} imports built-ins as ES modules`).toEqual([]);
      // The requires are there: the check above would pass on a bundle that reached none.
      expect(texts.join("").match(/\("node:https"\)/g)?.length ?? 0, bundle.name).toBeGreaterThan(0);
    }
  });

  it("are what the stack ships: `cdk synth` (cdk.json's app) writes the template offline, without AWS credentials, one asset per bundle", async () => {
    const out = await mkdtemp(join(tmpdir(), "hoist-cdk-"));
    const root = join(import.meta.dirname, "../..");
    // No AWS variables and an empty home: nothing to find credentials or a profile in.
    const clean = { PATH: process.env.PATH ?? "", HOME: out, CDK_DISABLE_CLI_TELEMETRY: "true" };
    const synth = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(root, "node_modules/aws-cdk/bin/cdk"), "synth", "--quiet", "--no-notices", "--output", out], { cwd: root, env: clean });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d));
      child.on("exit", (code) => resolve({ code, stderr }));
    });
    expect(synth.code, synth.stderr).toBe(0);
    const template = JSON.parse(await readFile(join(out, "Hoist.template.json"), "utf8")) as { Resources: Record<string, { Type: string; Properties: { Code?: { S3Key?: unknown } } }> };
    const functions = Object.values(template.Resources).filter((r) => r.Type === "AWS::Lambda::Function");
    expect(functions).toHaveLength(LAMBDA_FUNCTIONS.length);
    const assets = JSON.parse(await readFile(join(out, "Hoist.assets.json"), "utf8")) as { files: Record<string, { source: { path: string; packaging?: string } }> };
    const shipped = await Promise.all(
      Object.values(assets.files)
        .filter((f) => f.source.packaging === "zip")
        .map(async (f) => javascriptBytes(join(out, f.source.path))),
    );
    // Each asset is a bundle's directory: its entry and every chunk it may import.
    expect(shipped.sort()).toEqual(bundles.map((b) => b.bytes).sort());
  }, 120_000);

  it("each answers every sample in a fresh process through the AWS SDK, a poisoned message in batchItemFailures", async () => {
    const env: Env = { ...(await environment()), HOIST_AWS_TRANSPORT: "sdk" };
    for (const [fn, sample, expected] of SAMPLES) {
      const answer = await invokeFunction(fn, { event: event(sample), env, bundle: true, logs: () => undefined });
      expected(ok(answer));
    }
    // A push delivered twice is accepted once, and its wake-up is on the queue.
    const again = ok(await invokeFunction("webhook", { event: event("apigw/github-push"), env, bundle: true, logs: () => undefined }));
    expect(again).toMatchObject({ statusCode: 202, body: expect.stringContaining('"duplicate":true') });
    const sqs = new SQSClient({ endpoint: servers.sqs, ...awsClient });
    const queueUrl = `${servers.sqs}/123456789012/${env.HOIST_QUEUE}`;
    const depth = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }));
    expect(Number(depth.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(depth.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)).toBeGreaterThan(0);
  });

  it("make no table when the stack's queue URL says a stack made it, as on AWS; a local runtime given one makes its own", async () => {
    const env = await environment();
    const stack = { ...env, HOIST_QUEUE_URL: `${servers.sqs}/123456789012/${env.HOIST_QUEUE}` };
    const dynamo = new DynamoDBClient({ endpoint: servers.dynamodb, ...awsClient });
    const exists = (table: string) =>
      dynamo.send(new DescribeTableCommand({ TableName: table })).then(
        () => true,
        (err: Error) => (err.name === "ResourceNotFoundException" ? false : Promise.reject(err)),
      );
    const unmade = `fn-${uniqueSuffix()}`;
    expect(ok(await invokeFunction("api", { event: event("apigw/api-healthz"), env: { ...stack, HOIST_TABLE: unmade }, bundle: true, logs: () => undefined }))).toMatchObject({ statusCode: 200 });
    expect(await exists(unmade)).toBe(false);
    const local = `fn-${uniqueSuffix()}`;
    const runtime = await startLocal({ ...stack, HOIST_TABLE: local, HOIST_PORT: "0" }, {}, { workers: false });
    await runtime.stop();
    expect(await exists(local)).toBe(true);
  });

  it("refuses a forged push without writing or enqueuing", async () => {
    const env = await environment();
    const answer = ok(await invokeFunction("webhook", { event: event("apigw/github-push"), env, bundle: true, sign: false, logs: () => undefined }));
    expect(answer).toMatchObject({ statusCode: 401 });
    const list = ok(await invokeFunction("api", { event: event("apigw/api-list-runs"), env, bundle: true, logs: () => undefined }));
    expect(list).toMatchObject({ statusCode: 200, body: '{"runs":[]}' });
  });
});

describe("hoist invoke", () => {
  let runtime: LocalRuntime;
  let env: Env;
  beforeAll(async () => {
    env = { ...(await environment()), HOIST_PORT: "0" };
    runtime = await startLocal(env, {}, { workers: false });
  });
  afterAll(async () => {
    await runtime.stop();
  });

  it("runs every sample in events/ through the function's source, against the running local runtime it finds", async () => {
    // Only the data directory: the endpoints come from the runtime's runtime.json.
    const { AWS_ENDPOINT_URL_DYNAMODB: _d, AWS_ENDPOINT_URL_SQS: _s, HOIST_TABLE: _t, ...local } = env;
    for (const [fn, sample, expected] of SAMPLES) expected(ok(await invokeFunction(fn, { event: event(sample), env: local, logs: () => undefined })));
  });

  it("prints the handler's answer, and says what to start when no runtime runs", async () => {
    const cli = (args: string[], extra: Env) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", "lib/cli/main.ts", ...args], { cwd: join(import.meta.dirname, "../.."), env: { ...env, ...extra } });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d));
        child.stderr.on("data", (d: Buffer) => (stderr += d));
        child.on("exit", (code) => resolve({ code, stdout, stderr }));
      });
    const answered = await cli(["invoke", "api", "--event", "events/apigw/api-healthz.json"], {});
    expect(answered.code, answered.stderr).toBe(0);
    expect(JSON.parse(answered.stdout)).toMatchObject({ statusCode: 200 });
    const nowhere = await cli(["invoke", "webhook", "--event", "events/apigw/github-ping.json"], {
      AWS_ENDPOINT_URL_DYNAMODB: "",
      AWS_ENDPOINT_URL_SQS: "",
      HOIST_DATA_DIR: await mkdtemp(join(tmpdir(), "hoist-none-")),
    });
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/no local Hoist is running here .*bash scripts\/start\.sh/);
    const unknown = await cli(["invoke", "nothing", "--event", "events/apigw/github-ping.json"], {});
    expect(unknown.stderr).toMatch(/no function nothing: one of webhook, chat, api/);
  });
});
