import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { RetryableError } from "../errors.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import { isDynamoError, queryAll, type DynamoApi } from "./dynamo-api.ts";
import {
  branchPrefix,
  RegisteredSchedule,
  type NewSchedule,
  type Registration,
  type RegistrationResult,
  type ScheduleStore,
  type StoredSchedule,
} from "./schedules.ts";

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

/** How long a branch's registration marker outlives its push: far longer than any delivery takes to resolve. */
const MARKER_DAYS = 90;
/** Writes of one schedule tried while a scheduler tick keeps changing it under a registration. */
const ATTEMPTS = 3;

/**
 * The schedule registry on the run table, one partition per repository:
 *
 *   schedule  pk SCHEDULES#<provider>:<name>  sk <branch>:<pipeline>:<digest>  data (JSON), version
 *             due: active  gsi3pk SCHEDULE  gsi3sk dueAt    (the scheduler's list)
 *   marker    pk SCHEDULES#<provider>:<name>  sk <branch>  at, sha, expiresAt
 *
 * Schedules share the `active` index with runs and deliveries under their own partition, so the
 * scheduler reads only what is due, oldest first, with one bounded query. A branch's marker holds
 * the latest registration's push time: one conditional write on it drops a registration that
 * arrives after a later push's (a delivery retried through a provider outage), which would
 * otherwise bring back schedules the later file removed.
 */
export class DynamoScheduleStore implements ScheduleStore {
  constructor(
    private readonly api: DynamoApi,
    private readonly table: string,
  ) {}

  async replaceSchedules(reg: Registration, schedules: readonly NewSchedule[]): Promise<RegistrationResult | "stale"> {
    if (!(await this.claimRegistration(reg))) return "stale";
    const existing = await queryAll(this.api, {
      TableName: this.table,
      KeyConditionExpression: "pk = :p AND begins_with(sk, :b)",
      ExpressionAttributeValues: { ":p": partition(reg.repo), ":b": S(branchPrefix(reg.branch)) },
      ConsistentRead: true,
    });
    const stored = new Map(existing.map((item) => [item.sk?.S ?? "", toStored(item)]));
    const wanted = new Map(schedules.map((s) => [s.id, s]));
    const result: RegistrationResult = { added: [], updated: [], kept: [], removed: [] };
    for (const id of new Set([...wanted.keys(), ...stored.keys()])) {
      const outcome = await this.reconcile(reg, id, wanted.get(id), stored.get(id));
      if (outcome !== "gone") result[outcome].push(id);
    }
    return result;
  }

  async listSchedules(now: number, limit: number): Promise<StoredSchedule[]> {
    const out = await this.api.query({
      TableName: this.table,
      IndexName: "active",
      KeyConditionExpression: "gsi3pk = :s AND gsi3sk <= :now",
      ExpressionAttributeValues: { ":s": S("SCHEDULE"), ":now": N(now) },
      Limit: limit,
    });
    return (out.Items ?? []).map(toStored);
  }

  async saveSchedule(record: RegisteredSchedule, expected: number, dueAt: number | undefined): Promise<StoredSchedule | undefined> {
    const version = expected + 1;
    try {
      // On a removed schedule the condition fails too: a tick never brings one back.
      await this.api.putItem({ TableName: this.table, Item: item(record, version, dueAt), Expected: { version: { Value: N(expected) } } });
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return undefined;
      throw err;
    }
    return { record, version, ...(dueAt !== undefined ? { dueAt } : {}) };
  }

  /** One conditional write: false when a push received later has registered the branch already. */
  private async claimRegistration(reg: Registration): Promise<boolean> {
    try {
      await this.api.putItem({
        TableName: this.table,
        Item: {
          pk: partition(reg.repo),
          sk: S(reg.branch),
          at: N(reg.receivedAt),
          sha: S(reg.sha),
          expiresAt: N(Math.floor(reg.receivedAt / 1000) + MARKER_DAYS * 86_400),
        },
        // At or before: the same registration repeated (a redriven delivery) applies again. An
        // expression, not the Expected form the other writes use: dynalite reads an `Expected`
        // with ConditionalOperator OR as failed as soon as its first condition fails. Registrations
        // are one per push, so the expression's parsing cost does not matter here.
        ConditionExpression: "attribute_not_exists(pk) OR #at <= :at",
        ExpressionAttributeNames: { "#at": "at" },
        ExpressionAttributeValues: { ":at": N(reg.receivedAt) },
      });
      return true;
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return false;
      throw err;
    }
  }

  /**
   * Brings one schedule in line with the registration: each write is conditional on what was
   * read, and read again when a scheduler tick changed it meanwhile, so a claim is never lost.
   */
  private async reconcile(
    reg: Registration,
    id: string,
    wanted: NewSchedule | undefined,
    first: StoredSchedule | undefined,
  ): Promise<keyof RegistrationResult | "gone"> {
    let stored = first;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (attempt > 0) stored = await this.get(reg.repo, id);
      // A later push registered concurrently and got here first: its file decides.
      if (stored && stored.record.registeredAt > reg.receivedAt) return "kept";
      try {
        if (!stored) {
          if (!wanted) return "gone";
          const record: RegisteredSchedule = { id, repo: reg.repo, branch: reg.branch, pipeline: wanted.pipeline, schedule: wanted.schedule, sha: reg.sha, registeredAt: reg.receivedAt };
          // Due at once: the next tick decides its first slot (lib/pipeline/schedule-slots.ts).
          await this.api.putItem({ TableName: this.table, Item: item(record, 1, reg.receivedAt), Expected: { pk: { Exists: false } } });
          return "added";
        }
        const expected: Record<string, { Value: AttributeValue }> = { version: { Value: N(stored.version) } };
        if (!wanted) {
          await this.api.deleteItem({ TableName: this.table, Key: key(reg.repo, id), Expected: expected });
          return "removed";
        }
        // The key holds the branch, the pipeline and the pattern: only the rest can change.
        if (JSON.stringify(stored.record.schedule) === JSON.stringify(wanted.schedule)) return "kept";
        const record: RegisteredSchedule = { ...stored.record, schedule: wanted.schedule, sha: reg.sha, registeredAt: reg.receivedAt };
        await this.api.putItem({ TableName: this.table, Item: item(record, stored.version + 1, stored.dueAt), Expected: expected });
        return "updated";
      } catch (err) {
        if (!isDynamoError(err, "ConditionalCheckFailedException")) throw err;
      }
    }
    throw new RetryableError(`schedule ${id} of ${reg.repo.fullName} kept changing while ${reg.branch} was registered`);
  }

  private async get(repo: RepoRef, id: string): Promise<StoredSchedule | undefined> {
    const out = await this.api.getItem({ TableName: this.table, Key: key(repo, id), ConsistentRead: true });
    return out.Item ? toStored(out.Item) : undefined;
  }
}

function partition(repo: RepoRef): AttributeValue {
  return S(`SCHEDULES#${repo.provider}:${repo.fullName}`);
}

function key(repo: RepoRef, id: string): Record<string, AttributeValue> {
  return { pk: partition(repo), sk: S(id) };
}

function item(record: RegisteredSchedule, version: number, dueAt: number | undefined): Record<string, AttributeValue> {
  return {
    ...key(record.repo, record.id),
    data: S(JSON.stringify(record)),
    version: N(version),
    // A schedule that never fires again stays registered, out of the scheduler's list.
    ...(dueAt !== undefined ? { gsi3pk: S("SCHEDULE"), gsi3sk: N(dueAt) } : {}),
  };
}

function toStored(row: Record<string, AttributeValue>): StoredSchedule {
  const dueAt = row.gsi3sk?.N;
  return {
    record: RegisteredSchedule.parse(JSON.parse(row.data?.S ?? "null")),
    version: Number(row.version?.N),
    ...(dueAt !== undefined ? { dueAt: Number(dueAt) } : {}),
  };
}
