// bench/cost: the table and queue requests one run makes, by kind, and what they cost on AWS.
// A signed push of the sample compose app (lib/demo) goes through a 4-stage pipeline (build,
// test, push, deploy to an environment behind a local HAProxy) in a local Hoist whose table
// and queue APIs are counted (lib/services.ts, wrapAws). The baseline, in the same script, is
// the same Hoist left idle for as long as the runs took: what it asks without a run.
//
// Priced at on-demand us-east-1 list prices (aws.amazon.com/dynamodb/pricing/on-demand,
// aws.amazon.com/sqs/pricing): DynamoDB $0.625 per million write request units and $0.125 per
// million read request units, SQS $0.40 per million requests. Units are what the table reports
// (ReturnConsumedCapacity), plus one write per index entry an item written carries (DynamoDB
// bills those; dynalite does not report them); a refused conditional write still costs a unit.
// On AWS, Lambda's pollers make the queue's receives and deletes; they are counted as here.
//
//   npm run bench:cost -- [--runs 3]
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { AwsApis } from "../lib/aws/sdk-apis.ts";
import { githubPush } from "../lib/demo/payloads.ts";
import { commitAll, createSampleApp } from "../lib/demo/sample-app.ts";
import { startLocal } from "../lib/local/runtime.ts";
import { createLogger } from "../lib/log.ts";
import { signGitHub } from "../lib/scm/verify.ts";
import { freePort } from "../test/support/haproxy.ts";
import { runLog } from "./run-log.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
const runs = Number(values.runs);
const TARGET = 40;
const PRICE = { wru: 0.625e-6, rru: 0.125e-6, sqs: 0.4e-6 };
const INDEX_KEYS = ["gsi1pk", "gsi2pk", "gsi3pk"];
const secret = "bench-cost-webhook-secret";

/** Requests by kind ("dynamodb PutItem"), and the units they consumed. */
interface Tally {
  requests: Map<string, number>;
  wru: number;
  rru: number;
  /** Receives that found nothing: the idle cost of polling, apart from any run. */
  emptyReceives: number;
}
const tally = (): Tally => ({ requests: new Map(), wru: 0, rru: 0, emptyReceives: 0 });
let now = tally();

const count = (kind: string) => now.requests.set(kind, (now.requests.get(kind) ?? 0) + 1);
const pascal = (name: string) => name[0]!.toUpperCase() + name.slice(1);
const WRITES = new Set(["putItem", "deleteItem"]);

/** What a request is about: the item's kind by its keys' prefixes (RUN, LOG, ENV...), or the index a query reads. */
function itemKind(input: Record<string, unknown>): string {
  const key = (input.Item ?? input.Key) as Record<string, { S?: string }> | undefined;
  // A name in the sort key (an environment's, a registry's, a branch's) is shown as such.
  const part = (v: string | undefined) => (v === undefined ? "?" : /^[A-Z]+(#|$)/.test(v) ? v.split("#")[0]! : "<name>");
  if (key) return `${part(key.pk?.S)}/${part(key.sk?.S)}`;
  return typeof input.IndexName === "string" ? `index ${input.IndexName}` : input.KeyConditionExpression ? "table" : "";
}

/** The APIs, each call counted; DynamoDB's asked for the capacity it consumed. */
function counted(apis: AwsApis): AwsApis {
  const dynamo = Object.fromEntries(
    Object.entries(apis.dynamo).map(([name, call]: [string, (input: Record<string, unknown>) => Promise<Record<string, unknown>>]) => [
      name,
      async (input: Record<string, unknown>) => {
        count(`dynamodb ${pascal(name)} ${itemKind(input)}`);
        const write = WRITES.has(name);
        const item = (input.Item ?? {}) as Record<string, unknown>;
        if (name === "putItem") now.wru += INDEX_KEYS.filter((k) => k in item).length;
        try {
          const out = await call({ ...input, ...(name === "describeTable" || name === "createTable" ? {} : { ReturnConsumedCapacity: "TOTAL" }) });
          const units = (out.ConsumedCapacity as { CapacityUnits?: number } | undefined)?.CapacityUnits ?? 0;
          if (write) now.wru += units;
          else now.rru += units;
          return out;
        } catch (err) {
          if (write) now.wru += 1;
          throw err;
        }
      },
    ]),
  ) as unknown as AwsApis["dynamo"];
  const sqs = Object.fromEntries(
    Object.entries(apis.sqs).map(([name, call]: [string, (input: unknown) => Promise<{ Messages?: unknown[] }>]) => [
      name,
      async (input: unknown) => {
        const out = await call(input);
        if (name === "receiveMessage" && !out.Messages?.length) now.emptyReceives += 1;
        else count(`sqs ${pascal(name)}`);
        return out;
      },
    ]),
  ) as unknown as AwsApis["sqs"];
  return { dynamo, sqs };
}

const total = (t: Tally) => [...t.requests.values()].reduce((a, b) => a + b, 0);
const sqsRequests = (t: Tally) => [...t.requests].filter(([k]) => k.startsWith("sqs ")).reduce((a, [, n]) => a + n, 0);
const price = (t: Tally) => t.wru * PRICE.wru + t.rru * PRICE.rru + sqsRequests(t) * PRICE.sqs;

/** Waits until no request but empty receives has come for `quietMs`: the run's last acknowledgement is in. */
async function settled(quietMs = 2_000): Promise<void> {
  let last = total(now);
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    await new Promise((r) => setTimeout(r, 200));
    if (total(now) !== last) [last, since] = [total(now), Date.now()];
  }
}

const log = runLog();
const dir = await mkdtemp(join(tmpdir(), "hoist-bench-cost-"));
const env = `cost-${Date.now().toString(36)}`;
const runtime = await startLocal(
  {
    HOIST_PORT: "0",
    HOIST_DATA_DIR: join(dir, "data"),
    GITHUB_WEBHOOK_SECRET: secret,
    HOIST_ALLOW_LOCAL_REPOS: "1",
    HOIST_REGISTRY: "127.0.0.1:5000",
    HOIST_LOCAL_ROUTER_PORT: String(await freePort()),
    HOIST_LOCAL_ENVIRONMENT: env,
    HOIST_LOCAL_ROUTER_DIR: join(dir, "router"),
    // On AWS these are every-minute schedules whatever the runs: their cost is idle cost,
    // measured apart (README, Serverless: Cost). Here they stay out of the runs' count.
    HOIST_RECONCILE_EVERY_MS: "3600000",
    HOIST_CRON_EVERY_MS: "3600000",
  },
  { log: createLogger("info", [], log.sink), wrapAws: counted },
);
const app = await createSampleApp(join(dir, "app"), { image: `bench-cost-${env}`, deployTo: env });

async function oneRun(i: number): Promise<{ tally: Tally; ms: number }> {
  await settled();
  const { sha } = i === 0 ? app : await commitAll(app.path, "main", `run ${i}`);
  const body = githubPush({ path: app.path, sha, ref: "refs/heads/main", fullName: `bench/${env}` });
  now = tally();
  const started = Date.now();
  const res = await fetch(`${runtime.url}/hooks/github`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", "x-github-event": "push", "x-github-delivery": `cost-${sha}`, "x-hub-signature-256": await signGitHub(body, secret) },
  });
  if (res.status !== 202) throw new Error(`the push was answered ${res.status}: ${await res.text()}`);
  const { delivery } = (await res.json()) as { delivery: { id: string } };
  const [run] = await log.until(`delivery ${delivery.id}'s run`, () => log.resolved.get(delivery.id), 300_000);
  if (!run) throw new Error(`the push made no run`);
  const end = await log.until(`run ${run}`, () => log.finished.get(run), 300_000);
  if (end.status !== "succeeded") throw new Error(`run ${run} ${end.status}: ${end.error}`);
  const ms = Date.now() - started;
  await settled();
  return { tally: now, ms };
}

const results: { tally: Tally; ms: number }[] = [];
// The first run also builds the base layers and starts the db: the later ones are a push's usual work.
for (let i = 0; i < runs; i++) {
  const r = await oneRun(i);
  results.push(r);
  console.log(`run ${i + 1}: ${total(r.tally)} requests in ${(r.ms / 1000).toFixed(1)} s`);
}
// The baseline: the same Hoist, idle for as long as the median run took.
const median = <T>(xs: T[], key: (x: T) => number) => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
const typical = median(results, (r) => total(r.tally));
now = tally();
await new Promise((r) => setTimeout(r, typical.ms));
const idle = now;
await runtime.stop();

const kinds = [...new Set(results.flatMap((r) => [...r.tally.requests.keys()]))].sort();
console.log(`\nrequests per 4-stage run (build, test, push, deploy of a 3-service app), median run of ${runs}:`);
for (const kind of kinds) console.log(`  ${kind.padEnd(30)} ${String(typical.tally.requests.get(kind) ?? 0).padStart(4)}   (runs: ${results.map((r) => r.tally.requests.get(kind) ?? 0).join(", ")})`);
const n = total(typical.tally);
console.log(`  ${"total".padEnd(30)} ${String(n).padStart(4)}   (runs: ${results.map((r) => total(r.tally)).join(", ")}; target <= ${TARGET}: ${n <= TARGET ? "met" : "not met"})`);
console.log(`  units: ${typical.tally.wru} write, ${typical.tally.rru} read; empty receives (idle polling, not counted): ${typical.tally.emptyReceives}`);
const usd = price(typical.tally);
console.log(`\non-demand price: $${(usd * 1e6).toFixed(2)} per million runs ($${usd.toExponential(2)} a run): table $${((typical.tally.wru * PRICE.wru + typical.tally.rru * PRICE.rru) * 1e6).toFixed(2)}, queue $${(sqsRequests(typical.tally) * PRICE.sqs * 1e6).toFixed(2)} per million`);
console.log(`baseline, the same Hoist idle for ${(typical.ms / 1000).toFixed(1)} s: ${total(idle)} requests (${[...idle.requests].map(([k, v]) => `${k} ${v}`).join(", ") || "none"}), ${idle.emptyReceives} empty receives`);
