import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { Environment, type EnvironmentStore } from "../release/environment.ts";
import { ReleaseRecord, type ReleaseStore } from "../release/records.ts";
import { isDynamoError, putItemWithin, type DynamoApi } from "./dynamo-api.ts";

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

/**
 * Environments, their release history and release lease, in the run table:
 *   ENVS       <env>      the environment's registration (one partition: they are few)
 *   ENV#<env>  REL#<id>   one release (ids sort in time)
 *   ENV#<env>  LOCK       owner, until: one release at a time
 */
export class DynamoReleaseStore implements ReleaseStore, EnvironmentStore {
  constructor(
    private readonly api: DynamoApi,
    private readonly table: string,
  ) {}

  async putEnvironment(env: Environment): Promise<void> {
    await putItemWithin(this.api, { TableName: this.table, Item: { pk: S("ENVS"), sk: S(env.name), data: S(JSON.stringify(env)) } }, `environment ${env.name}`);
  }

  async getEnvironment(name: string): Promise<Environment | undefined> {
    const out = await this.api.getItem({ TableName: this.table, Key: { pk: S("ENVS"), sk: S(name) }, ConsistentRead: true });
    return out.Item ? Environment.parse(JSON.parse(out.Item.data?.S ?? "null")) : undefined;
  }

  async listEnvironments(): Promise<Environment[]> {
    const out = await this.api.query({ TableName: this.table, KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": S("ENVS") } });
    return (out.Items ?? []).map((item) => Environment.parse(JSON.parse(item.data?.S ?? "null")));
  }

  async lock(env: string, owner: string, until: number, now: number): Promise<{ ok: true } | { ok: false; holder: string; until: number }> {
    for (;;) {
      try {
        await this.api.putItem({
          TableName: this.table,
          Item: { pk: S(`ENV#${env}`), sk: S("LOCK"), owner: S(owner), until: N(until) },
          ConditionExpression: "attribute_not_exists(pk) OR #u < :now OR #o = :me",
          ExpressionAttributeNames: { "#u": "until", "#o": "owner" },
          ExpressionAttributeValues: { ":now": N(now), ":me": S(owner) },
        });
        return { ok: true };
      } catch (err) {
        if (!isDynamoError(err, "ConditionalCheckFailedException")) throw err;
        const held = await this.api.getItem({ TableName: this.table, Key: { pk: S(`ENV#${env}`), sk: S("LOCK") }, ConsistentRead: true });
        // Released between the two calls: try again rather than name a holder that is gone.
        if (held.Item) return { ok: false, holder: held.Item.owner?.S ?? "another release", until: Number(held.Item.until?.N ?? now) };
      }
    }
  }

  async unlock(env: string, owner: string): Promise<void> {
    try {
      await this.api.deleteItem({
        TableName: this.table,
        Key: { pk: S(`ENV#${env}`), sk: S("LOCK") },
        ConditionExpression: "#o = :me",
        ExpressionAttributeNames: { "#o": "owner" },
        ExpressionAttributeValues: { ":me": S(owner) },
      });
    } catch (err) {
      if (!isDynamoError(err, "ConditionalCheckFailedException")) throw err; // it expired and someone else holds it
    }
  }

  async putRelease(record: ReleaseRecord): Promise<void> {
    const item = { pk: S(`ENV#${record.env}`), sk: S(`REL#${record.id}`), data: S(JSON.stringify(record)) };
    await putItemWithin(this.api, { TableName: this.table, Item: item }, `release ${record.id} of ${record.env}`);
  }

  async getRelease(env: string, id: string): Promise<ReleaseRecord | undefined> {
    const out = await this.api.getItem({ TableName: this.table, Key: { pk: S(`ENV#${env}`), sk: S(`REL#${id}`) }, ConsistentRead: true });
    return out.Item ? ReleaseRecord.parse(JSON.parse(out.Item.data?.S ?? "null")) : undefined;
  }

  async listReleases(env: string, limit = 50): Promise<ReleaseRecord[]> {
    const out = await this.api.query({
      TableName: this.table,
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :rel)",
      ExpressionAttributeValues: { ":pk": S(`ENV#${env}`), ":rel": S("REL#") },
      ScanIndexForward: false,
      Limit: limit,
    });
    return (out.Items ?? []).map((item) => ReleaseRecord.parse(JSON.parse(item.data?.S ?? "null")));
  }
}
