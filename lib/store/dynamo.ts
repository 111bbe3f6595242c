import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ResourceNotFoundException,
  type AttributeValue,
  type QueryCommandInput,
} from "@aws-sdk/client-dynamodb";
import { Run, TERMINAL } from "../pipeline/run.ts";
import type { Lease, LogChunk, RunFilter, RunStore, StoredRun } from "./port.ts";

/**
 * RunStore on one DynamoDB table (single-table design, see README "Data model").
 * Every change is a single-item conditional write: no transactions, which dynalite lacks
 * and which the design does not need.
 *
 *   run   pk RUN#<id>  sk RUN            data (JSON), version, leaseUntil, status, branch
 *         byRepo  gsi1pk REPO#<provider>:<name>   gsi1sk <createdAt>#<id>
 *         byTime  gsi2pk RUNS                      gsi2sk <createdAt>#<id>
 *         active  gsi3pk ACTIVE (only while unfinished)  gsi3sk leaseUntil
 *   log   pk RUN#<id>  sk LOG#<stage>#<offset>  text
 */

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

export interface DynamoRunStoreOptions {
  client: DynamoDBClient;
  table: string;
  /** Runs expire from the table after this many days (the run item is also the webhook dedupe marker). */
  retentionDays?: number;
}

export class DynamoRunStore implements RunStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly retentionSec: number;

  constructor(opts: DynamoRunStoreOptions) {
    this.client = opts.client;
    this.table = opts.table;
    this.retentionSec = (opts.retentionDays ?? 90) * 86_400;
  }

  async createRun(run: Run, lease: Lease): Promise<"created" | "exists"> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: this.runItem(run, 1, lease),
          ConditionExpression: "attribute_not_exists(pk)",
        }),
      );
      return "created";
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return "exists";
      throw err;
    }
  }

  async getRun(id: string): Promise<StoredRun | undefined> {
    const out = await this.client.send(
      new GetItemCommand({ TableName: this.table, Key: { pk: S(`RUN#${id}`), sk: S("RUN") }, ConsistentRead: true }),
    );
    return out.Item ? toStored(out.Item) : undefined;
  }

  async saveRun(run: Run, expected: number, lease: Lease | undefined): Promise<StoredRun | undefined> {
    const version = expected + 1;
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: this.runItem(run, version, lease),
          ConditionExpression: "#v = :expected",
          ExpressionAttributeNames: { "#v": "version" },
          ExpressionAttributeValues: { ":expected": N(expected) },
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return undefined;
      throw err;
    }
    const final = TERMINAL.has(run.status);
    return { run, version, ...(lease && !final ? { leaseUntil: lease.until, leaseOwner: lease.owner } : {}) };
  }

  async listRuns(filter: RunFilter): Promise<{ runs: Run[]; cursor?: string }> {
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 200);
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const filters: string[] = [];
    if (filter.branch) {
      names["#b"] = "branch";
      values[":b"] = S(filter.branch);
      filters.push("#b = :b");
    }
    if (filter.status) {
      names["#s"] = "status";
      values[":s"] = S(filter.status);
      filters.push("#s = :s");
    }
    const byRepo = filter.repo !== undefined;
    values[":pk"] = S(byRepo ? `REPO#${filter.repo}` : "RUNS");
    const runs: Run[] = [];
    let start = filter.cursor ? decodeCursor(filter.cursor) : undefined;
    // A filter applies after the page is read, so keep reading until the page is full.
    do {
      const input: QueryCommandInput = {
        TableName: this.table,
        IndexName: byRepo ? "byRepo" : "byTime",
        KeyConditionExpression: `${byRepo ? "gsi1pk" : "gsi2pk"} = :pk`,
        ExpressionAttributeValues: values,
        ScanIndexForward: false,
        Limit: limit - runs.length,
        ExclusiveStartKey: start,
        ...(filters.length ? { FilterExpression: filters.join(" AND "), ExpressionAttributeNames: names } : {}),
      };
      const out = await this.client.send(new QueryCommand(input));
      for (const item of out.Items ?? []) runs.push(toStored(item).run);
      start = out.LastEvaluatedKey;
    } while (start && runs.length < limit);
    return { runs, ...(start ? { cursor: encodeCursor(start) } : {}) };
  }

  async expiredRuns(now: number, limit: number): Promise<StoredRun[]> {
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: "active",
        KeyConditionExpression: "gsi3pk = :a AND gsi3sk < :now",
        ExpressionAttributeValues: { ":a": S("ACTIVE"), ":now": N(now) },
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map(toStored);
  }

  async putLog(runId: string, chunk: LogChunk): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: {
          pk: S(`RUN#${runId}`),
          sk: S(logKey(chunk.stage, chunk.offset)),
          stage: N(chunk.stage),
          offset: N(chunk.offset),
          text: S(chunk.text),
          expiresAt: N(Math.floor(Date.now() / 1000) + this.retentionSec),
        },
      }),
    );
  }

  async readLogs(runId: string, stage?: number): Promise<LogChunk[]> {
    const chunks: LogChunk[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
          ExpressionAttributeValues: { ":pk": S(`RUN#${runId}`), ":prefix": S(stage === undefined ? "LOG#" : `LOG#${pad(stage, 3)}#`) },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of out.Items ?? [])
        chunks.push({ stage: Number(item.stage?.N), offset: Number(item.offset?.N), text: item.text?.S ?? "" });
      start = out.LastEvaluatedKey;
    } while (start);
    return chunks;
  }

  /** Creates the table and its indexes when missing (local runtime and tests; on AWS the stack does). */
  async ensureTable(): Promise<void> {
    try {
      await this.client.send(new DescribeTableCommand({ TableName: this.table }));
      return;
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
    }
    const gsi = (name: string, pk: string, sk: string) => ({
      IndexName: name,
      KeySchema: [
        { AttributeName: pk, KeyType: "HASH" as const },
        { AttributeName: sk, KeyType: "RANGE" as const },
      ],
      Projection: { ProjectionType: "ALL" as const },
    });
    try {
      await this.client.send(
        new CreateTableCommand({
          TableName: this.table,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [
            { AttributeName: "pk", AttributeType: "S" },
            { AttributeName: "sk", AttributeType: "S" },
            { AttributeName: "gsi1pk", AttributeType: "S" },
            { AttributeName: "gsi1sk", AttributeType: "S" },
            { AttributeName: "gsi2pk", AttributeType: "S" },
            { AttributeName: "gsi3pk", AttributeType: "S" },
            { AttributeName: "gsi3sk", AttributeType: "N" },
          ],
          KeySchema: [
            { AttributeName: "pk", KeyType: "HASH" },
            { AttributeName: "sk", KeyType: "RANGE" },
          ],
          GlobalSecondaryIndexes: [gsi("byRepo", "gsi1pk", "gsi1sk"), gsi("byTime", "gsi2pk", "gsi1sk"), gsi("active", "gsi3pk", "gsi3sk")],
        }),
      );
    } catch (err) {
      // Another process created it first: fine.
      if (!(err instanceof Error && err.name === "ResourceInUseException")) throw err;
    }
  }

  private runItem(run: Run, version: number, lease: Lease | undefined): Record<string, AttributeValue> {
    const sortKey = `${pad(run.createdAt, 15)}#${run.id}`;
    const item: Record<string, AttributeValue> = {
      pk: S(`RUN#${run.id}`),
      sk: S("RUN"),
      data: S(JSON.stringify(run)),
      version: N(version),
      status: S(run.status),
      gsi1pk: S(`REPO#${repoKey(run)}`),
      gsi1sk: S(sortKey),
      gsi2pk: S("RUNS"),
      expiresAt: N(Math.floor(run.createdAt / 1000) + this.retentionSec),
    };
    if (run.branch) item.branch = S(run.branch);
    if (lease && !TERMINAL.has(run.status)) {
      item.gsi3pk = S("ACTIVE");
      item.gsi3sk = N(lease.until);
      if (lease.owner) item.leaseOwner = S(lease.owner);
    }
    return item;
  }
}

/** The repo key runs are listed by: `<provider>:<fullName>`. */
function repoKey(run: Pick<Run, "repo">): string {
  return `${run.repo.provider}:${run.repo.fullName}`;
}

function toStored(item: Record<string, AttributeValue>): StoredRun {
  const run = Run.parse(JSON.parse(item.data?.S ?? "null"));
  const leaseUntil = item.gsi3sk?.N;
  return {
    run,
    version: Number(item.version?.N),
    ...(leaseUntil ? { leaseUntil: Number(leaseUntil) } : {}),
    ...(item.leaseOwner?.S ? { leaseOwner: item.leaseOwner.S } : {}),
  };
}

function logKey(stage: number, offset: number): string {
  return `LOG#${pad(stage, 3)}#${pad(offset, 12)}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function encodeCursor(key: Record<string, AttributeValue>): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

function decodeCursor(cursor: string): Record<string, AttributeValue> | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    return parsed && typeof parsed === "object" ? (parsed as Record<string, AttributeValue>) : undefined;
  } catch {
    return undefined; // a garbled cursor reads from the start rather than failing the page
  }
}
