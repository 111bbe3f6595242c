import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import * as z from "zod";
import { isLambdaFunction, LAMBDA_FUNCTIONS, type LambdaFunction } from "../bundles/functions.ts";
import { ConfigError, loadConfig, processEnv, type Env } from "../config.ts";
import { readRuntimeFile, runtimeFile } from "../local/runtime-file.ts";
import { signSample } from "../local/sign-sample.ts";
import type { CliContext } from "./context.ts";
import { CliError, intArg } from "./output.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const RUNNER = join(ROOT, "lib/local/invoke-runner.mjs");
/** Lambda's limit for a synchronous invocation's event. */
const MAX_EVENT_BYTES = 6 * 1024 * 1024;

const Answer = z.union([
  z.object({ ok: z.literal(true), result: z.unknown(), ms: z.object({ import: z.number(), handler: z.number() }), answeredAt: z.number() }),
  z.object({ ok: z.literal(false), error: z.object({ name: z.string(), message: z.string() }) }),
]);
/** `totalMs`: from spawning the process to the handler's answer (or to the process's end, if it failed). */
export type InvokeAnswer = z.infer<typeof Answer> & { totalMs: number };

export interface InvokeOptions {
  event: string;
  /** Run dist/lambda/<name>/index.mjs (npm run bundle) instead of the source. */
  bundle?: boolean;
  sign?: boolean;
  timeoutSec?: number;
  env?: Env;
  /** Where the function's own log lines go. */
  logs?: (chunk: Buffer) => void;
}

/**
 * Runs one function's Lambda handler on a sample event in a fresh Node process, as `sam
 * local invoke` does, against the local runtime's table and queue (the endpoints it wrote to
 * HOIST_DATA_DIR/runtime.json), or those AWS_ENDPOINT_URL_DYNAMODB and _SQS name.
 */
export async function invokeFunction(name: LambdaFunction, opts: InvokeOptions): Promise<InvokeAnswer> {
  const env = opts.env ?? processEnv();
  const size = await stat(opts.event).then((s) => s.size, () => undefined);
  if (size === undefined) throw new CliError(`no event file ${opts.event}: see events/README.md for the samples`);
  if (size > MAX_EVENT_BYTES) throw new CliError(`${opts.event} is ${size} bytes, over Lambda's ${MAX_EVENT_BYTES} for an event`);
  let event: unknown;
  try {
    event = JSON.parse(await readFile(opts.event, "utf8"));
  } catch (err) {
    throw new CliError(`${opts.event} is not JSON: ${(err as Error).message}`);
  }
  const fnEnv = { ...env, ...(await localEndpoints(env)) };
  let config;
  try {
    config = loadConfig(fnEnv);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
  const module = opts.bundle ? join(ROOT, "dist/lambda", name, "index.mjs") : join(ROOT, "functions", `${name}.ts`);
  if (!existsSync(module)) throw new CliError(`${module} does not exist: run \`npm run bundle\` first`);
  return invokeModule(module, opts.sign === false ? event : await signSample(event, config), {
    name,
    env: fnEnv,
    tsx: !opts.bundle,
    timeoutMs: (opts.timeoutSec ?? 120) * 1000,
    ...(opts.logs ? { logs: opts.logs } : {}),
  });
}

/**
 * Any module exporting `handler`, called on `event` in a fresh Node process as Lambda calls it
 * (bench/coldstart's baselines too). `totalMs` runs from the spawn to the handler's answer: the
 * runner's clock at the answer against this one's at the spawn.
 */
export async function invokeModule(
  module: string,
  event: unknown,
  opts: { name: string; env: Env; tsx?: boolean; timeoutMs?: number; logs?: (chunk: Buffer) => void },
): Promise<InvokeAnswer> {
  const dir = await mkdtemp(join(tmpdir(), "hoist-invoke-"));
  try {
    const eventFile = join(dir, "event.json");
    const answerFile = join(dir, "answer.json");
    await writeFile(eventFile, JSON.stringify(event));
    const started = performance.timeOrigin + performance.now();
    await run([...(opts.tsx ? ["--import", "tsx"] : []), RUNNER, module, eventFile, answerFile, opts.name], opts.env, opts.timeoutMs ?? 120_000, opts.logs);
    const ended = performance.timeOrigin + performance.now();
    const text = await readFile(answerFile, "utf8").catch(() => "");
    const answer = Answer.safeParse(text ? JSON.parse(text) : undefined);
    if (!answer.success) throw new CliError(`${opts.name} crashed before it answered: see its log above`);
    return { ...answer.data, totalMs: (answer.data.ok ? answer.data.answeredAt : ended) - started };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function localEndpoints(env: Env): Promise<Env> {
  if (env.AWS_ENDPOINT_URL_DYNAMODB && (env.AWS_ENDPOINT_URL_SQS || env.HOIST_QUEUE_URL)) return {};
  const path = runtimeFile(env.HOIST_DATA_DIR || ".hoist");
  const found = await readRuntimeFile(path);
  if (!found)
    throw new CliError(
      `no local Hoist is running here (no ${path}): start one with \`bash scripts/start.sh\` (or \`npx hoist start\`), or set AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_SQS`,
    );
  return { AWS_ENDPOINT_URL_DYNAMODB: found.dynamodb, AWS_ENDPOINT_URL_SQS: found.sqs, HOIST_TABLE: found.table, HOIST_QUEUE_URL: found.queueUrl };
}

function run(args: string[], env: Env, timeoutMs: number, logs: ((chunk: Buffer) => void) | undefined): Promise<void> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    const write = logs ?? ((chunk: Buffer) => void process.stderr.write(chunk));
    child.stdout.on("data", write);
    child.stderr.on("data", write);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new CliError(`the function did not answer within ${timeoutMs / 1000} s (Lambda would have stopped it too)`));
    }, timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", () => {
      clearTimeout(timer);
      resolveRun();
    });
  });
}

export function registerInvoke(program: Command, ctx: CliContext): void {
  program
    .command("invoke")
    .description(`run a function's Lambda handler here on a sample event (events/), against the local runtime's table and queue; functions: ${LAMBDA_FUNCTIONS.join(", ")}`)
    .argument("<function>", "the function")
    .requiredOption("--event <file>", "the event, e.g. events/apigw/github-push.json")
    .option("--bundle", "run its bundle (dist/lambda/<function>/index.mjs, from `npm run bundle`) rather than its source")
    .option("--no-sign", "send the sample as it is, not signed with this machine's secrets")
    .option("--timeout <seconds>", "give up after this long", intArg(1, 900), 120)
    .action(async (name: string, opts: { event: string; bundle?: boolean; sign: boolean; timeout: number }) => {
      if (!isLambdaFunction(name)) throw new CliError(`no function ${name}: one of ${LAMBDA_FUNCTIONS.join(", ")}`);
      const answer = await invokeFunction(name, { event: opts.event, bundle: opts.bundle ?? false, sign: opts.sign, timeoutSec: opts.timeout });
      if (!answer.ok) throw new CliError(`${name} failed: ${answer.error.name}: ${answer.error.message}`);
      ctx.out.print(JSON.stringify(answer.result, null, 2));
    });
}
