import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import { HttpApi, HttpMethod } from "aws-cdk-lib/aws-apigatewayv2";
import { HttpLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { AttributeType, BillingMode, Table, type GlobalSecondaryIndexProps } from "aws-cdk-lib/aws-dynamodb";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { ManagedPolicy, PolicyStatement } from "aws-cdk-lib/aws-iam";
import { Architecture, Function as LambdaFn, Runtime, type Code } from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";
import type { LambdaFunction as HoistFunction } from "../lib/bundles/functions.ts";
import { SECRET_SETTINGS } from "./context.ts";

export interface HoistStackProps extends StackProps {
  /** Each function's code: its bundle from `npm run bundle` (infra/app.ts), or inline code in template tests. */
  code: (name: HoistFunction) => Code;
  /** Non-secret settings for every function, by lib/config.ts's names (checked in infra/context.ts). */
  settings?: Readonly<Record<string, string>>;
  /** Where people reach Hoist; default the HTTP API's URL. */
  publicUrl?: string;
  /** Who the alarms are emailed to; unset, no topic is made. */
  alarmEmail?: string;
  /** ECR repositories the worker may push to and pull from with the token it asks ECR for. */
  ecrRepositoryArns?: readonly string[];
}

/**
 * A worker call works on a run for HOIST_STEP_BUDGET_MS and then hands it over to a delayed
 * message (lib/runs/advance.ts), so an ordinary call ends within a slice of the budget. Two
 * kinds of work cannot be handed over midway: a release, which starts instances one by one,
 * each health-gated, and may hold its environment for HOIST_RELEASE_LEASE_MS (15 min); and a
 * commit's archive, which the worker streams to the builder (up to 10 min, lib/scm). So the
 * worker may run to Lambda's limit, which costs nothing on the calls that end early (Lambda
 * bills the time used), while the budget stays short so that waits are handed over rather than
 * slept through on the bill.
 */
export const STEP_BUDGET = Duration.seconds(60);
export const WORKER_TIMEOUT = Duration.minutes(15);

/**
 * At least six times the worker's timeout, as Lambda asks of a queue it consumes: a batch whose
 * call was throttled is retried within the visibility window instead of counting a receive
 * towards the dead-letter queue. A failed message waits this long before its retry, but the
 * reconciler re-drives its run as soon as the run's lease (30 s) lapses.
 */
export const QUEUE_VISIBILITY = Duration.seconds(WORKER_TIMEOUT.toSeconds() * 6);

/** As lib/queue/sqs.ts's ensureQueue makes the queue locally. */
export const MAX_RECEIVE_COUNT = 5;

/**
 * The run store's indexes, as lib/store/dynamo-table.ts's ensureTable creates them locally (the
 * template test holds the two to each other).
 */
const INDEXES = [
  { indexName: "byRepo", partitionKey: { name: "gsi1pk", type: AttributeType.STRING }, sortKey: { name: "gsi1sk", type: AttributeType.STRING } },
  { indexName: "byTime", partitionKey: { name: "gsi2pk", type: AttributeType.STRING }, sortKey: { name: "gsi1sk", type: AttributeType.STRING } },
  { indexName: "active", partitionKey: { name: "gsi3pk", type: AttributeType.STRING }, sortKey: { name: "gsi3sk", type: AttributeType.NUMBER } },
] as const satisfies readonly GlobalSecondaryIndexProps[];

/** The table's TTL attribute: epoch seconds, written by the once-markers, deliveries, runs and their logs. */
export const TTL_ATTRIBUTE = "expiresAt";

/** The one secret setting CloudFormation generates at the stack's creation. */
export const GENERATED_SECRET = "HOIST_API_TOKEN" satisfies (typeof SECRET_SETTINGS)[number];

/** The DynamoDB operations of lib/store/dynamo-api.ts's DynamoApi that run on AWS (the stack makes the table). */
type TableAction = "GetItem" | "PutItem" | "DeleteItem" | "Query";

interface FunctionSpec {
  description: string;
  memoryMb: number;
  timeout: Duration;
  /** The operations the stores it reaches call, and nothing more. */
  table: readonly TableAction[];
  /**
   * Stack traces through the bundle's source map. Node then reads the map at the cold start
   * (measured here: +60-80 ms on the webhook's import), so the two functions on a sender's or a
   * person's clock go without.
   */
  sourceMaps: boolean;
}

const ALL: readonly TableAction[] = ["GetItem", "PutItem", "DeleteItem", "Query"];
/**
 * Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB: at 512 MB a
 * cold start, which is CPU work (compiling the bundle, the SDK's first request), takes about
 * 3.5 times what bench/coldstart measures on a whole core. The two functions on a sender's or
 * a person's clock get the whole vCPU; they run for milliseconds, so it costs cents a month.
 */
export const ONE_VCPU_MB = 1769;
/** Lambda's ceiling under the HTTP API's own: it gives up on an integration after 30 s. */
const HTTP_TIMEOUT = Duration.seconds(29);

/**
 * Every function `npm run bundle` builds (a new one does not compile until it has a spec). Every
 * one of them sends wake-ups, so each may send to the queue; the table operations are those the
 * stores it reaches call:
 * - webhook: the delivery's conditional put, and a read of it when it is a duplicate (lib/runs/ingest.ts);
 * - chat: a once-marker's put, and the run's read and conditional save at its gate (lib/runs/approve.ts);
 * - api, worker: every store; reconcile: runs, deliveries and the routers' watch (leases are
 *   deleted); cron: schedule slots (a stale slot is deleted) and the runs they start.
 */
const FUNCTIONS: Record<HoistFunction, FunctionSpec> = {
  webhook: { description: "POST /hooks/github, /hooks/gitlab: verify, dedupe, record the delivery, enqueue", memoryMb: ONE_VCPU_MB, timeout: Duration.seconds(10), table: ["GetItem", "PutItem"], sourceMaps: false },
  chat: { description: "POST /chat/slack, GET|POST /chat/approve/{token}: approvals from chat", memoryMb: ONE_VCPU_MB, timeout: HTTP_TIMEOUT, table: ["GetItem", "PutItem"], sourceMaps: false },
  api: { description: "/api/* and GET /healthz", memoryMb: 512, timeout: HTTP_TIMEOUT, table: ALL, sourceMaps: true },
  worker: { description: "SQS consumer: resolves deliveries, advances runs, runs queued releases", memoryMb: 1024, timeout: WORKER_TIMEOUT, table: ALL, sourceMaps: true },
  // Every minute; a tick that outlasts the next is harmless (leases keep two apart), and a
  // provider call may take 60 s.
  reconcile: { description: "Every minute: re-drives runs and deliveries nobody holds; keeps routers in step", memoryMb: 512, timeout: Duration.minutes(2), table: ALL, sourceMaps: true },
  cron: { description: "Every minute: fires each due `on.schedule` slot once", memoryMb: 512, timeout: Duration.minutes(2), table: ALL, sourceMaps: true },
};

/** The two every-minute functions. */
const SCHEDULED = ["reconcile", "cron"] as const satisfies readonly HoistFunction[];

/** Hoist on AWS: an HTTP API, six functions, one table, one queue and its dead letters, one secret. */
export class HoistStack extends Stack {
  readonly functions: Record<HoistFunction, LambdaFn>;

  constructor(scope: Construct, id: string, props: HoistStackProps) {
    super(scope, id, { description: "Hoist: serverless container delivery (README, Deploy on AWS)", ...props });

    const table = new Table(this, "Table", {
      partitionKey: { name: "pk", type: AttributeType.STRING },
      sortKey: { name: "sk", type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TTL_ATTRIBUTE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Run history, environments and registry logins outlive the stack: deleting it keeps them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of INDEXES) table.addGlobalSecondaryIndex(index);

    const deadLetters = new Queue(this, "DeadLetters", { encryption: QueueEncryption.SQS_MANAGED, retentionPeriod: Duration.days(14) });
    // Standard, not FIFO: FIFO queues cannot delay single messages, which the worker's hand-overs need (lib/queue/sqs.ts).
    const queue = new Queue(this, "Runs", {
      encryption: QueueEncryption.SQS_MANAGED,
      visibilityTimeout: QUEUE_VISIBILITY,
      deadLetterQueue: { queue: deadLetters, maxReceiveCount: MAX_RECEIVE_COUNT },
    });

    // CloudFormation generates one key of a secret. The API token is the one needed from the
    // first minute (the API refuses every request without it), so it is that one; the others
    // are there empty, for the operator to fill (README, Deploy on AWS): empty is unset
    // (lib/aws/secrets.ts).
    const secret = new Secret(this, "Secrets", {
      description: "Hoist's secret settings (JSON, lib/config.ts names): webhook secrets, API token, provider and chat tokens",
      generateSecretString: {
        secretStringTemplate: JSON.stringify(Object.fromEntries(SECRET_SETTINGS.filter((k) => k !== GENERATED_SECRET).map((k) => [k, ""]))),
        generateStringKey: GENERATED_SECRET,
        passwordLength: 48,
        excludePunctuation: true,
      },
    });

    const http = new HttpApi(this, "Http", { description: "Hoist: webhooks, chat and API" });
    const publicUrl = props.publicUrl ?? http.apiEndpoint;

    const make = (name: HoistFunction, extra: Record<string, string> = {}): LambdaFn => {
      const spec = FUNCTIONS[name];
      const id = name[0]!.toUpperCase() + name.slice(1);
      const fn = new LambdaFn(this, id, {
        description: `Hoist ${name}: ${spec.description}`,
        runtime: Runtime.NODEJS_24_X,
        architecture: Architecture.ARM_64,
        handler: "index.handler",
        code: props.code(name),
        memorySize: spec.memoryMb,
        timeout: spec.timeout,
        environment: {
          ...props.settings,
          HOIST_TABLE: table.tableName,
          HOIST_QUEUE_URL: queue.queueUrl,
          HOIST_SECRETS_ARN: secret.secretArn,
          HOIST_PUBLIC_URL: publicUrl,
          ...(spec.sourceMaps ? { NODE_OPTIONS: "--enable-source-maps" } : {}),
          ...extra,
        },
        // Logs are kept a month rather than forever: their storage is billed by the GB.
        logGroup: new LogGroup(this, `${id}Logs`, { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
      });
      // Named actions on named resources only: aws-cdk-lib's grant helpers add operations
      // (batch reads, scans, queue attributes) that no Hoist code calls.
      const items = spec.table.filter((a) => a !== "Query");
      if (items.length) fn.addToRolePolicy(new PolicyStatement({ actions: items.map((a) => `dynamodb:${a}`), resources: [table.tableArn] }));
      if (spec.table.includes("Query"))
        fn.addToRolePolicy(new PolicyStatement({ actions: ["dynamodb:Query"], resources: [table.tableArn, ...INDEXES.map((i) => `${table.tableArn}/index/${i.indexName}`)] }));
      // SendMessageBatch is authorized as sqs:SendMessage.
      fn.addToRolePolicy(new PolicyStatement({ actions: ["sqs:SendMessage"], resources: [queue.queueArn] }));
      fn.addToRolePolicy(new PolicyStatement({ actions: ["secretsmanager:GetSecretValue"], resources: [secret.secretArn] }));
      return fn;
    };

    const worker = make("worker", { HOIST_STEP_BUDGET_MS: String(STEP_BUDGET.toMilliseconds()) });
    this.functions = { webhook: make("webhook"), chat: make("chat"), api: make("api"), worker, reconcile: make("reconcile"), cron: make("cron") };

    // Receive, delete and change visibility are granted by the event source for this queue only.
    // A short window gathers a burst of wake-ups into one call without delaying a lone one much.
    worker.addEventSource(new SqsEventSource(queue, { batchSize: 10, maxBatchingWindow: Duration.seconds(1), reportBatchItemFailures: true }));

    if (props.ecrRepositoryArns?.length) {
      // GetAuthorizationToken has no resource of its own; the token it gives acts with this
      // role's rights, which name the repositories.
      worker.addToRolePolicy(new PolicyStatement({ actions: ["ecr:GetAuthorizationToken"], resources: ["*"] }));
      worker.addToRolePolicy(
        new PolicyStatement({
          actions: ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"],
          resources: [...props.ecrRepositoryArns],
        }),
      );
    }

    // The webhook at the edge (functions/edge.ts, wrangler.toml) acts as an IAM user whose keys
    // are the Worker's secrets: this policy, for that user, allows what the webhook function
    // may do with the table and the queue, and nothing more.
    const edge = new ManagedPolicy(this, "EdgeIngressPolicy", {
      description: "Hoist's webhook on Cloudflare Workers: record deliveries and enqueue them (README, Serverless: Edge ingress)",
      statements: [
        new PolicyStatement({ actions: FUNCTIONS.webhook.table.map((a) => `dynamodb:${a}`), resources: [table.tableArn] }),
        new PolicyStatement({ actions: ["sqs:SendMessage"], resources: [queue.queueArn] }),
      ],
    });

    const integrations = new Map<HoistFunction, HttpLambdaIntegration>();
    const route = (name: HoistFunction, methods: HttpMethod[], ...paths: string[]) => {
      let integration = integrations.get(name);
      if (!integration) integrations.set(name, (integration = new HttpLambdaIntegration(`${name}Integration`, this.functions[name])));
      for (const path of paths) http.addRoutes({ path, methods, integration });
    };
    route("webhook", [HttpMethod.POST], "/hooks/github", "/hooks/gitlab");
    route("chat", [HttpMethod.POST], "/chat/slack");
    route("chat", [HttpMethod.GET, HttpMethod.POST], "/chat/approve/{token}");
    route("api", [HttpMethod.ANY], "/api/{proxy+}");
    route("api", [HttpMethod.GET], "/healthz");

    for (const name of SCHEDULED) {
      const fn = this.functions[name];
      // A failed tick is not retried: the next one, a minute later, does the same work afresh.
      fn.configureAsyncInvoke({ retryAttempts: 0 });
      new Rule(this, `${fn.node.id}EveryMinute`, { description: `Hoist ${name}, every minute`, schedule: Schedule.rate(Duration.minutes(1)), targets: [new LambdaFunction(fn)] });
    }

    const alarms = [
      new Alarm(this, "DeadLettersAlarm", {
        alarmDescription: `A wake-up failed ${MAX_RECEIVE_COUNT} times and was set aside in the dead-letter queue (the reconciler still re-drives its run): read it there, see the worker's log`,
        metric: deadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: "Maximum" }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
      // A failed message is reported, not thrown (partial batch responses): an error here is a
      // call that crashed or timed out, which returns its whole batch to the queue.
      new Alarm(this, "WorkerErrorsAlarm", {
        alarmDescription: "A worker call crashed or timed out: see the worker's log",
        metric: worker.metricErrors({ period: Duration.minutes(5), statistic: "Sum" }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    ];
    if (props.alarmEmail) {
      const topic = new Topic(this, "AlarmTopic", { displayName: "Hoist alarms" });
      topic.addSubscription(new EmailSubscription(props.alarmEmail));
      for (const alarm of alarms) alarm.addAlarmAction(new SnsAction(topic));
    }

    new CfnOutput(this, "HttpApiUrl", { description: "Webhooks at /hooks/github and /hooks/gitlab, Slack at /chat/slack, the API at /api", value: http.apiEndpoint });
    new CfnOutput(this, "SecretArn", { description: "Hoist's secret settings: aws secretsmanager get-secret-value / put-secret-value", value: secret.secretArn });
    new CfnOutput(this, "TableName", { value: table.tableName });
    new CfnOutput(this, "QueueUrl", { value: queue.queueUrl });
    new CfnOutput(this, "DeadLetterQueueUrl", { value: deadLetters.queueUrl });
    new CfnOutput(this, "EdgeIngressPolicyArn", { description: "For the IAM user of the webhook on Cloudflare Workers (wrangler.toml)", value: edge.managedPolicyArn });
  }
}
