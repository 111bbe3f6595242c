import type { CreateTableCommandInput, PutItemCommandInput } from "@aws-sdk/client-dynamodb";
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Code } from "aws-cdk-lib/aws-lambda";
import { beforeAll, describe, expect, it } from "vitest";
import { ContextError, readContext, SECRET_SETTINGS } from "../../infra/context.ts";
import { GENERATED_SECRET, HoistStack, ONE_VCPU_MB } from "../../infra/stack.ts";
import { LAMBDA_FUNCTIONS, type LambdaFunction } from "../../lib/bundles/functions.ts";
import { ConfigSchema } from "../../lib/config.ts";
import type { DynamoApi } from "../../lib/store/dynamo-api.ts";
import { DynamoOnceStore } from "../../lib/store/dynamo-once.ts";
import { ensureTable } from "../../lib/store/dynamo-table.ts";

/** The parts of a CloudFormation resource these tests read. */
interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}
type Ref = { Ref: string } | { "Fn::GetAtt": [string, string] };

const ECR_REPOSITORY = "arn:aws:ecr:eu-west-1:123456789012:repository/acme/web";

let template: Template;
let resources: Record<string, Resource>;
/** Each function's logical id, found by the name its inline code carries. */
const fnId = {} as Record<LambdaFunction, string>;
let tableId: string;
let queueId: string;
let deadLettersId: string;
let secretId: string;

beforeAll(() => {
  const app = new App();
  const stack = new HoistStack(app, "Test", {
    code: (name) => Code.fromInline(`// hoist:${name}\nexport const handler = async () => ({});`),
    settings: { SLACK_CHANNEL: "C0123456789" },
    alarmEmail: "ops@example.com",
    ecrRepositoryArns: [ECR_REPOSITORY],
  });
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Record<string, Resource>;
  for (const [id, r] of Object.entries(resources)) {
    const marker = /^\/\/ hoist:(\w+)/.exec(String((r.Properties.Code as { ZipFile?: string } | undefined)?.ZipFile ?? ""));
    if (r.Type === "AWS::Lambda::Function" && marker) fnId[marker[1] as LambdaFunction] = id;
  }
  tableId = only("AWS::DynamoDB::Table");
  secretId = only("AWS::SecretsManager::Secret");
  const queues = ids("AWS::SQS::Queue");
  queueId = queues.find((id) => resources[id]!.Properties.RedrivePolicy !== undefined)!;
  deadLettersId = queues.find((id) => id !== queueId)!;
});

function ids(type: string): string[] {
  return Object.entries(resources)
    .filter(([, r]) => r.Type === type)
    .map(([id]) => id);
}

function only(type: string): string {
  const found = ids(type);
  expect(found, type).toHaveLength(1);
  return found[0]!;
}

function props(id: string): Record<string, unknown> {
  return resources[id]!.Properties;
}

/** The logical id a `Ref` or `Fn::GetAtt` points at. */
function target(ref: unknown): string | undefined {
  const r = ref as Ref;
  return "Ref" in r ? r.Ref : r["Fn::GetAtt"][0];
}

/** Whether a (possibly joined) value names resource `id`. */
function mentions(value: unknown, id: string): boolean {
  return JSON.stringify(value).includes(`"${id}"`);
}

function env(name: LambdaFunction): Record<string, unknown> {
  return (props(fnId[name]) as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
}

/** Every statement of the IAM policies attached to the function's role. */
function statementsOf(name: LambdaFunction): Statement[] {
  const role = target(props(fnId[name]).Role);
  return ids("AWS::IAM::Policy")
    .filter((id) => (props(id).Roles as Ref[]).some((r) => target(r) === role))
    .flatMap((id) => (props(id).PolicyDocument as { Statement: Statement[] }).Statement);
}

const actions = (s: Statement): string[] => [s.Action].flat();
const resourcesOf = (s: Statement): unknown[] => [s.Resource].flat();

/** The actions a function may take on resources naming `id` (the table and its indexes, or a queue). */
function actionsOn(name: LambdaFunction, id: string): string[] {
  const all = statementsOf(name)
    .filter((s) => s.Effect === "Allow" && resourcesOf(s).some((r) => mentions(r, id)))
    .flatMap(actions);
  return [...new Set(all)].sort();
}

/** What ensureTable (lib/store/dynamo-table.ts) asks DynamoDB to create, caught by an API with no table yet. */
async function storeTable(): Promise<CreateTableCommandInput> {
  let asked: CreateTableCommandInput | undefined;
  const api: DynamoApi = {
    ...unusedApi,
    describeTable: async () => {
      throw Object.assign(new Error("Requested resource not found"), { name: "ResourceNotFoundException" });
    },
    createTable: async (input) => {
      asked = input;
      return {};
    },
  };
  await ensureTable(api, "hoist");
  if (!asked) throw new Error("ensureTable created no table");
  return asked;
}

/** The item an approval link's once-marker writes. */
async function onceItem(): Promise<NonNullable<PutItemCommandInput["Item"]>> {
  let item: PutItemCommandInput["Item"];
  const api: DynamoApi = {
    ...unusedApi,
    putItem: async (input) => {
      item = input.Item;
      return {};
    },
  };
  await new DynamoOnceStore(api, "hoist", { now: () => 1_700_000_000_000 }).claimOnce("link:nonce", 60_000);
  if (!item) throw new Error("claimOnce wrote nothing");
  return item;
}

const unusedApi: DynamoApi = {
  putItem: () => Promise.reject(new Error("not expected")),
  getItem: () => Promise.reject(new Error("not expected")),
  deleteItem: () => Promise.reject(new Error("not expected")),
  query: () => Promise.reject(new Error("not expected")),
  describeTable: () => Promise.reject(new Error("not expected")),
  createTable: () => Promise.reject(new Error("not expected")),
};

const byName = <T extends { AttributeName?: string | undefined } | { IndexName?: string | undefined }>(list: readonly T[] | undefined): T[] =>
  [...(list ?? [])].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe("the stack's functions", () => {
  it("are one per bundle, on Node 22 or later, arm64, each calling its bundle's `handler`", () => {
    template.resourceCountIs("AWS::Lambda::Function", LAMBDA_FUNCTIONS.length);
    expect(Object.keys(fnId).sort()).toEqual([...LAMBDA_FUNCTIONS].sort());
    for (const name of LAMBDA_FUNCTIONS) {
      const fn = props(fnId[name]);
      const major = Number(/^nodejs(\d+)\.x$/.exec(String(fn.Runtime))?.[1]);
      expect(major, `${name}'s runtime ${String(fn.Runtime)}`).toBeGreaterThanOrEqual(22);
      expect(fn.Architectures).toEqual(["arm64"]);
      expect(fn.Handler).toBe("index.handler");
    }
  });

  it("give the webhook and chat a whole vCPU (1,769 MB), the others what they need", () => {
    const memory = Object.fromEntries(LAMBDA_FUNCTIONS.map((name) => [name, props(fnId[name]).MemorySize]));
    expect(memory).toEqual({ webhook: ONE_VCPU_MB, chat: ONE_VCPU_MB, api: 512, worker: 1024, reconcile: 512, cron: 512 });
    expect(ONE_VCPU_MB).toBe(1769);
  });

  it("each know the table, the queue, the secret and the public URL, and the context's settings; source maps but on the webhook and chat (they cost a cold start)", () => {
    const http = only("AWS::ApiGatewayV2::Api");
    for (const name of LAMBDA_FUNCTIONS) {
      const vars = env(name);
      expect(vars).toMatchObject({ HOIST_TABLE: { Ref: tableId }, HOIST_QUEUE_URL: { Ref: queueId }, HOIST_SECRETS_ARN: { Ref: secretId }, SLACK_CHANNEL: "C0123456789" });
      expect(vars.NODE_OPTIONS).toBe(name === "webhook" || name === "chat" ? undefined : "--enable-source-maps");
      expect(mentions(vars.HOIST_PUBLIC_URL, http), `${name}'s HOIST_PUBLIC_URL is the HTTP API's`).toBe(true);
      for (const secret of SECRET_SETTINGS) expect(vars, `${name} has no ${secret} in its environment`).not.toHaveProperty(secret);
    }
  });

  it("are reached over one HTTP API: webhooks, chat, the API and its health check, each by its own function", () => {
    const routes = Object.fromEntries(
      ids("AWS::ApiGatewayV2::Route").map((id) => {
        // "integrations/" joined with the integration's Ref
        const [, parts] = (props(id).Target as { "Fn::Join": [string, unknown[]] })["Fn::Join"];
        const uri = props(target(parts.at(-1))!).IntegrationUri;
        const fn = LAMBDA_FUNCTIONS.find((name) => target(uri) === fnId[name]);
        return [props(id).RouteKey, fn];
      }),
    );
    expect(routes).toEqual({
      "POST /hooks/github": "webhook",
      "POST /hooks/gitlab": "webhook",
      "POST /chat/slack": "chat",
      "GET /chat/approve/{token}": "chat",
      "POST /chat/approve/{token}": "chat",
      "ANY /api/{proxy+}": "api",
      "GET /healthz": "api",
    });
    template.hasResourceProperties("AWS::ApiGatewayV2::Api", { ProtocolType: "HTTP" });
  });
});

describe("the queue", () => {
  it("is a standard queue that sets a message aside in its dead-letter queue after 5 receives", () => {
    expect(props(queueId).FifoQueue).toBeUndefined();
    expect(props(queueId).RedrivePolicy).toEqual({ deadLetterTargetArn: { "Fn::GetAtt": [deadLettersId, "Arn"] }, maxReceiveCount: 5 });
  });

  it("hides a received message for at least 6 times the worker's timeout", () => {
    const visibility = Number(props(queueId).VisibilityTimeout);
    const timeout = Number(props(fnId.worker).Timeout);
    expect(timeout).toBeGreaterThan(0);
    expect(visibility).toBeGreaterThanOrEqual(6 * timeout);
  });

  it("feeds the worker in batches that report their failed messages one by one", () => {
    template.resourceCountIs("AWS::Lambda::EventSourceMapping", 1);
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: fnId.worker },
      EventSourceArn: { "Fn::GetAtt": [queueId, "Arn"] },
      FunctionResponseTypes: Match.arrayWith(["ReportBatchItemFailures"]),
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: Match.anyValue(),
    });
    const [mapping] = Object.values(template.findResources("AWS::Lambda::EventSourceMapping")) as Resource[];
    expect(Number(mapping!.Properties.MaximumBatchingWindowInSeconds)).toBeLessThanOrEqual(5);
  });

  it("leaves the worker's step budget well inside its timeout", () => {
    const budgetMs = Number(env("worker").HOIST_STEP_BUDGET_MS);
    expect(budgetMs).toBeGreaterThan(0);
    expect(budgetMs).toBeLessThan(Number(props(fnId.worker).Timeout) * 1000);
  });
});

describe("the table", () => {
  it("has the key schema and the indexes the local runtime creates (lib/store/dynamo-table.ts)", async () => {
    const store = await storeTable();
    const table = props(tableId) as Pick<CreateTableCommandInput, "KeySchema" | "AttributeDefinitions" | "GlobalSecondaryIndexes"> & { BillingMode: string };
    expect(table.BillingMode).toBe(store.BillingMode);
    expect(table.BillingMode).toBe("PAY_PER_REQUEST");
    expect(table.KeySchema).toEqual(store.KeySchema);
    expect(byName(table.AttributeDefinitions)).toEqual(byName(store.AttributeDefinitions));
    const indexes = (list: CreateTableCommandInput["GlobalSecondaryIndexes"]) => byName(list?.map((i) => ({ IndexName: i.IndexName, KeySchema: i.KeySchema, Projection: i.Projection })));
    expect(store.GlobalSecondaryIndexes?.length).toBeGreaterThan(0);
    expect(indexes(table.GlobalSecondaryIndexes)).toEqual(indexes(store.GlobalSecondaryIndexes));
  });

  it("expires items by the epoch-seconds attribute the once-markers write", async () => {
    const item = await onceItem();
    const ttl = (props(tableId).TimeToLiveSpecification as { AttributeName: string; Enabled: boolean }) ?? {};
    expect(ttl.Enabled).toBe(true);
    expect(item[ttl.AttributeName]?.N, `the once-marker writes ${ttl.AttributeName} as a number`).toMatch(/^\d{10}$/);
  });

  it("keeps point-in-time recovery, and outlives the stack", () => {
    expect(props(tableId).PointInTimeRecoverySpecification).toMatchObject({ PointInTimeRecoveryEnabled: true });
    expect(resources[tableId]!.DeletionPolicy).toBe("Retain");
    expect(resources[tableId]!.UpdateReplacePolicy).toBe("Retain");
  });
});

describe("the schedules", () => {
  it("invoke reconcile and cron every minute, and nothing else", () => {
    const scheduled = ids("AWS::Events::Rule").map((id) => {
      const rule = props(id) as { ScheduleExpression: string; State: string; Targets: { Arn: unknown }[] };
      expect(rule.ScheduleExpression).toBe("rate(1 minute)");
      expect(rule.State).toBe("ENABLED");
      return rule.Targets.map((t) => LAMBDA_FUNCTIONS.find((name) => target(t.Arn) === fnId[name]));
    });
    expect(scheduled.flat().sort()).toEqual(["cron", "reconcile"]);
  });
});

describe("IAM", () => {
  it("grants no action with a wildcard, in any policy", () => {
    const policies = ids("AWS::IAM::Policy");
    expect(policies.length).toBeGreaterThanOrEqual(LAMBDA_FUNCTIONS.length);
    for (const id of policies)
      for (const statement of (props(id).PolicyDocument as { Statement: Statement[] }).Statement)
        for (const action of actions(statement)) expect(action, `${id} grants ${action}`).not.toContain("*");
  });

  const table = { read: ["dynamodb:GetItem"], write: ["dynamodb:PutItem"], all: ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"] };
  const consume = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage"];
  describe.each([
    { name: "webhook", onTable: [...table.read, ...table.write], onQueue: ["sqs:SendMessage"] },
    { name: "chat", onTable: [...table.read, ...table.write], onQueue: ["sqs:SendMessage"] },
    { name: "api", onTable: table.all, onQueue: ["sqs:SendMessage"] },
    { name: "worker", onTable: table.all, onQueue: consume },
    { name: "reconcile", onTable: table.all, onQueue: ["sqs:SendMessage"] },
    { name: "cron", onTable: table.all, onQueue: ["sqs:SendMessage"] },
  ] as const)("$name", ({ name, onTable, onQueue }) => {
    it("may do on the table and the queue only what its code does", () => {
      expect(actionsOn(name, tableId)).toEqual([...onTable].sort());
      expect(actionsOn(name, queueId)).toEqual([...onQueue].sort());
      expect(actionsOn(name, deadLettersId)).toEqual([]);
    });

    it("may read the secret, and only the secret", () => {
      const grants = statementsOf(name).filter((s) => actions(s).some((a) => a.startsWith("secretsmanager:")));
      expect(grants).toEqual([{ Effect: "Allow", Action: "secretsmanager:GetSecretValue", Resource: { Ref: secretId } }]);
    });
  });

  it("lets a function query the table's indexes by name, and only where it may query", async () => {
    const store = await storeTable();
    const query = statementsOf("api").find((s) => actions(s).includes("dynamodb:Query"))!;
    const joined = JSON.stringify(query.Resource);
    for (const index of store.GlobalSecondaryIndexes ?? []) expect(joined).toContain(`/index/${index.IndexName}"`);
    for (const s of statementsOf("api").filter((s) => !actions(s).includes("dynamodb:Query"))) expect(JSON.stringify(s.Resource)).not.toContain("/index/");
  });

  it("offers the edge's IAM user a managed policy with exactly the webhook's rights on the table and the queue", () => {
    const [policy, ...more] = ids("AWS::IAM::ManagedPolicy");
    expect(more).toEqual([]);
    const statements = (props(policy!).PolicyDocument as { Statement: Statement[] }).Statement;
    const on = (id: string) => [...new Set(statements.filter((s) => s.Effect === "Allow" && resourcesOf(s).some((r) => mentions(r, id))).flatMap(actions))].sort();
    expect(on(tableId)).toEqual(actionsOn("webhook", tableId));
    expect(on(queueId)).toEqual(["sqs:SendMessage"]);
    expect(statements.flatMap(actions).filter((a) => !a.startsWith("dynamodb:") && !a.startsWith("sqs:"))).toEqual([]);
    for (const action of statements.flatMap(actions)) expect(action).not.toContain("*");
    template.hasOutput("EdgeIngressPolicyArn", { Value: { Ref: policy } });
  });

  it("gives only the worker ECR: a token, and the named repositories", () => {
    for (const name of LAMBDA_FUNCTIONS.filter((n) => n !== "worker")) expect(statementsOf(name).flatMap(actions).filter((a) => a.startsWith("ecr:"))).toEqual([]);
    const ecr = statementsOf("worker").filter((s) => actions(s).some((a) => a.startsWith("ecr:")));
    expect(ecr).toContainEqual({ Effect: "Allow", Action: "ecr:GetAuthorizationToken", Resource: "*" });
    const rest = ecr.filter((s) => !actions(s).includes("ecr:GetAuthorizationToken"));
    expect(rest.map((s) => s.Resource)).toEqual([ECR_REPOSITORY]);
    expect(rest.flatMap(actions)).toEqual(expect.arrayContaining(["ecr:PutImage", "ecr:BatchGetImage"]));
  });
});

describe("the secret", () => {
  it("is one JSON secret: the API token generated, every other secret setting there to fill", () => {
    const generate = props(secretId).GenerateSecretString as { GenerateStringKey: string; SecretStringTemplate: string; PasswordLength: number };
    expect(generate.GenerateStringKey).toBe(GENERATED_SECRET);
    expect(generate.PasswordLength).toBeGreaterThanOrEqual(16);
    const keys = [...Object.keys(JSON.parse(generate.SecretStringTemplate) as object), generate.GenerateStringKey];
    expect(keys.sort()).toEqual([...SECRET_SETTINGS].sort());
    // lib/aws/secrets.ts refuses a key Hoist does not read.
    for (const key of keys) expect(ConfigSchema.shape).toHaveProperty(key);
  });
});

describe("the alarms", () => {
  it("watch the dead-letter queue's depth and the worker's errors, and email them", () => {
    template.resourceCountIs("AWS::CloudWatch::Alarm", 2);
    const topic = only("AWS::SNS::Topic");
    const common = { ComparisonOperator: "GreaterThanThreshold", Threshold: 0, EvaluationPeriods: 1, AlarmActions: [{ Ref: topic }] };
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      ...common,
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [deadLettersId, "QueueName"] } }],
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", { ...common, Namespace: "AWS/Lambda", MetricName: "Errors", Dimensions: [{ Name: "FunctionName", Value: { Ref: fnId.worker } }] });
    template.hasResourceProperties("AWS::SNS::Subscription", { Protocol: "email", Endpoint: "ops@example.com", TopicArn: { Ref: topic } });
  });
});

describe("the outputs", () => {
  it("name the HTTP API's URL, the secret, the table and the queue", () => {
    template.hasOutput("HttpApiUrl", { Value: { "Fn::GetAtt": [Match.stringLikeRegexp("^Http"), "ApiEndpoint"] } });
    template.hasOutput("SecretArn", { Value: { Ref: secretId } });
    template.hasOutput("TableName", { Value: { Ref: tableId } });
    template.hasOutput("QueueUrl", { Value: { Ref: queueId } });
  });
});

describe("the CDK context (infra/context.ts)", () => {
  const read = (context: Record<string, unknown>) => readContext((key) => context[key]);

  it("defaults to a stack named Hoist with no extra settings", () => {
    expect(read({})).toEqual({ stackName: "Hoist", settings: {}, ecrRepositoryArns: [] });
  });

  it("takes settings as JSON (cdk.json) or as the string `-c settings=...` gives", () => {
    expect(read({ settings: { SLACK_CHANNEL: "C1" } }).settings).toEqual({ SLACK_CHANNEL: "C1" });
    expect(read({ settings: '{"HOIST_LOG_LEVEL":"debug"}', ecrRepositoryArns: `${ECR_REPOSITORY},${ECR_REPOSITORY}2` })).toMatchObject({
      settings: { HOIST_LOG_LEVEL: "debug" },
      ecrRepositoryArns: [ECR_REPOSITORY, `${ECR_REPOSITORY}2`],
    });
  });

  it.each([
    [{ settings: { GITHUB_TOKEN: "ghp_x" } }, /settings\.GITHUB_TOKEN: is a secret/],
    [{ settings: { HOIST_TABLE: "mine" } }, /settings\.HOIST_TABLE: is set by the stack/],
    [{ settings: { AWS_REGION: "eu-west-1" } }, /settings\.AWS_REGION: is not for a function on AWS/],
    [{ settings: { HOIST_NO_SUCH: "1" } }, /settings\.HOIST_NO_SUCH: is not a Hoist setting/],
    [{ settings: { HOIST_LEASE_MS: "soon" } }, /settings\.HOIST_LEASE_MS/],
    [{ publicUrl: "http://hoist.example.com" }, /publicUrl: must be an https:\/\/ URL/],
    [{ alarmEmail: "ops" }, /alarmEmail/],
    [{ ecrRepositoryArns: "acme/web" }, /ecrRepositoryArns\.0: is an ECR repository ARN/],
  ])("refuses %j, saying why", (context, why) => {
    expect(() => read(context)).toThrow(ContextError);
    expect(() => read(context)).toThrow(why);
  });
});
