import type { AttributeValue, QueryCommandInput } from "@aws-sdk/client-dynamodb";
import { inFlight } from "../pipeline/machine.ts";
import { Run } from "../pipeline/run.ts";
import { TERMINAL } from "../pipeline/statuses.ts";
import { isDynamoError, putItemWithin, queryAll, type DynamoApi } from "./dynamo-api.ts";
import { MAX_PAGE, type Lease, type LogChunk, type RunFilter, type RunStore, type StoredRun } from "./port.ts";

/**
 * RunStore on one DynamoDB table (single-table design, see README "Data model").
 * Every change is a single-item conditional write: no transactions, which dynalite lacks
 * and which the design does not need. The two conditions (item absent; version unchanged)
 * use the `Expected` form rather than ConditionExpression: DynamoDB keeps supporting it,
 * and dynalite parses every ConditionExpression with a PEG grammar, which was 12% of the
 * embedded table's CPU per webhook (profiled under bench/ingest).
 *
 *   run   pk RUN#<id>  sk RUN            data (JSON), version, status, branch, repo
 *         unfinished: active  gsi3pk ACTIVE  gsi3sk leaseUntil         (the reconciler's list)
 *         finished:   byRepo  gsi1pk REPO#<provider>:<name>  gsi1sk <createdAt>#<id>
 *                     byTime  gsi2pk RUNS                    gsi1sk
 *   log   pk RUN#<id>  sk LOG#<stage>#<offset>  text
 *
 * A run is in exactly one place at a time: in flight in `active`, history in the other
 * two, moved by the save that finishes it. So a webhook's write updates one index, not
 * three (each index entry is most of dynalite's cost per write: 1,190 against 1,450
 * webhooks/s in bench/ingest), and listings merge the in-flight runs with history.
 */

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

export interface DynamoRunStoreOptions {
  api: DynamoApi;
  table: string;
  /** Runs expire from the table after this many days (the run item is also the webhook dedupe marker). */
  retentionDays?: number;
}

export class DynamoRunStore implements RunStore {
  private readonly api: DynamoApi;
  private readonly table: string;
  private readonly retentionSec: number;

  constructor(opts: DynamoRunStoreOptions) {
    this.api = opts.api;
    this.table = opts.table;
    this.retentionSec = (opts.retentionDays ?? 90) * 86_400;
  }

  async createRun(run: Run, lease: Lease): Promise<"created" | "exists"> {
    try {
      await putItemWithin(this.api, { TableName: this.table, Item: this.runItem(run, 1, lease), Expected: { pk: { Exists: false } } }, `run ${run.id}`);
      return "created";
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return "exists";
      throw err;
    }
  }

  async getRun(id: string): Promise<StoredRun | undefined> {
    const out = await this.api.getItem({ TableName: this.table, Key: { pk: S(`RUN#${id}`), sk: S("RUN") }, ConsistentRead: true });
    return out.Item ? toStored(out.Item) : undefined;
  }

  async saveRun(run: Run, expected: number, lease: Lease | undefined): Promise<StoredRun | undefined> {
    const version = expected + 1;
    try {
      await putItemWithin(this.api, { TableName: this.table, Item: this.runItem(run, version, lease), Expected: { version: { Value: N(expected) } } }, `run ${run.id}`);
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return undefined;
      throw err;
    }
    return { run, version, ...(lease && inFlight(run) ? { leaseUntil: lease.until, leaseOwner: lease.owner } : {}) };
  }

  async listRuns(filter: RunFilter): Promise<{ runs: Run[]; cursor?: string }> {
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), MAX_PAGE);
    const before = filter.cursor ? decodeCursor(filter.cursor) : undefined;
    const wantsFinished = filter.status === undefined || TERMINAL.has(filter.status);
    const [active, finished] = await Promise.all([
      wantsFinished && filter.status !== undefined ? [] : this.unfinished(filter, before),
      wantsFinished ? this.finished(filter, before, limit) : { runs: [], more: false },
    ]);
    // A run that finished between the two reads shows up in both: keep its newer record.
    const byId = new Map<string, Run>();
    for (const run of [...active, ...finished.runs]) {
      const seen = byId.get(run.id);
      if (!seen || seen.updatedAt < run.updatedAt) byId.set(run.id, run);
    }
    const merged = [...byId.values()].sort((x, y) => (sortKey(y) < sortKey(x) ? -1 : 1));
    const runs = merged.slice(0, limit);
    const more = merged.length > limit || finished.more;
    const last = runs.at(-1);
    return { runs, ...(more && last ? { cursor: encodeCursor(sortKey(last)) } : {}) };
  }

  /** Runs in flight matching `filter` and older than `before`: a bounded set, read whole. */
  private async unfinished(filter: RunFilter, before: string | undefined): Promise<Run[]> {
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = { ":a": S("ACTIVE") };
    const filters = this.filterExpression(filter, names, values);
    if (filter.repo !== undefined) {
      names["#r"] = "repo";
      values[":r"] = S(filter.repo);
      filters.push("#r = :r");
    }
    const items = await queryAll(this.api, {
      TableName: this.table,
      IndexName: "active",
      KeyConditionExpression: "gsi3pk = :a",
      ExpressionAttributeValues: values,
      ...(filters.length ? { FilterExpression: filters.join(" AND "), ExpressionAttributeNames: names } : {}),
    });
    return items.map((item) => toStored(item).run).filter((run) => before === undefined || sortKey(run) < before);
  }

  /** Finished runs matching `filter`, newest first, older than `before`: up to `limit`. */
  private async finished(filter: RunFilter, before: string | undefined, limit: number): Promise<{ runs: Run[]; more: boolean }> {
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const filters = this.filterExpression(filter, names, values);
    const byRepo = filter.repo !== undefined;
    values[":pk"] = S(byRepo ? `REPO#${filter.repo}` : "RUNS");
    if (before !== undefined) values[":before"] = S(before);
    const runs: Run[] = [];
    let start: Record<string, AttributeValue> | undefined;
    // A filter applies after the page is read, so keep reading until the page is full.
    do {
      const input: QueryCommandInput = {
        TableName: this.table,
        IndexName: byRepo ? "byRepo" : "byTime",
        KeyConditionExpression: `${byRepo ? "gsi1pk" : "gsi2pk"} = :pk${before !== undefined ? " AND gsi1sk < :before" : ""}`,
        ExpressionAttributeValues: values,
        ScanIndexForward: false,
        Limit: limit - runs.length,
        ExclusiveStartKey: start,
        ...(filters.length ? { FilterExpression: filters.join(" AND "), ExpressionAttributeNames: names } : {}),
      };
      const out = await this.api.query(input);
      for (const item of out.Items ?? []) runs.push(toStored(item).run);
      start = out.LastEvaluatedKey;
    } while (start && runs.length < limit);
    return { runs, more: start !== undefined };
  }

  private filterExpression(filter: RunFilter, names: Record<string, string>, values: Record<string, AttributeValue>): string[] {
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
    return filters;
  }

  async expiredRuns(now: number, limit: number): Promise<StoredRun[]> {
    const out = await this.api.query({
      TableName: this.table,
      IndexName: "active",
      KeyConditionExpression: "gsi3pk = :a AND gsi3sk < :now",
      ExpressionAttributeValues: { ":a": S("ACTIVE"), ":now": N(now) },
      Limit: limit,
    });
    return (out.Items ?? []).map(toStored);
  }

  async putLog(runId: string, chunk: LogChunk): Promise<void> {
    const item = {
      pk: S(`RUN#${runId}`),
      sk: S(logKey(chunk.stage, chunk.offset)),
      stage: N(chunk.stage),
      offset: N(chunk.offset),
      text: S(chunk.text),
      expiresAt: N(Math.floor(Date.now() / 1000) + this.retentionSec),
    };
    await putItemWithin(this.api, { TableName: this.table, Item: item }, `log chunk ${chunk.stage}/${chunk.offset} of run ${runId}`);
  }

  async readLogs(runId: string, stage?: number): Promise<LogChunk[]> {
    const chunks: LogChunk[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.api.query({
        TableName: this.table,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues: { ":pk": S(`RUN#${runId}`), ":prefix": S(stage === undefined ? "LOG#" : `LOG#${pad(stage, 3)}#`) },
        ExclusiveStartKey: start,
      });
      for (const item of out.Items ?? [])
        chunks.push({ stage: Number(item.stage?.N), offset: Number(item.offset?.N), text: item.text?.S ?? "" });
      start = out.LastEvaluatedKey;
    } while (start);
    return chunks;
  }

  private runItem(run: Run, version: number, lease: Lease | undefined): Record<string, AttributeValue> {
    const item: Record<string, AttributeValue> = {
      pk: S(`RUN#${run.id}`),
      sk: S("RUN"),
      data: S(JSON.stringify(run)),
      version: N(version),
      status: S(run.status),
      repo: S(repoKey(run)),
      expiresAt: N(Math.floor(run.createdAt / 1000) + this.retentionSec),
    };
    if (run.branch) item.branch = S(run.branch);
    if (TERMINAL.has(run.status)) {
      item.gsi1pk = S(`REPO#${repoKey(run)}`);
      item.gsi1sk = S(sortKey(run));
      item.gsi2pk = S("RUNS");
    }
    // A final run with a stage still to undo is in both: listed with the finished, and watched.
    if (inFlight(run)) {
      // An unfinished run saved without a lease is due at once: nothing in flight goes unwatched.
      item.gsi3pk = S("ACTIVE");
      item.gsi3sk = N(lease?.until ?? 0);
      if (lease?.owner) item.leaseOwner = S(lease.owner);
    }
    return item;
  }
}

/** Newest first across both listings: creation time, then id. */
function sortKey(run: Pick<Run, "createdAt" | "id">): string {
  return `${pad(run.createdAt, 15)}#${run.id}`;
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

/** A page ends at a run; the next page starts below its sort key. */
function encodeCursor(key: string): string {
  return Buffer.from(key).toString("base64url");
}

function decodeCursor(cursor: string): string | undefined {
  const key = Buffer.from(cursor, "base64url").toString("utf8");
  // A garbled cursor reads from the start rather than failing the page.
  return /^\d{15}#[\w-]+$/.test(key) ? key : undefined;
}
