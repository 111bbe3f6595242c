import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { Delivery, type DeliveryStore, type StoredDelivery } from "./deliveries.ts";
import { isDynamoError, type DynamoApi } from "./dynamo-api.ts";

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

/**
 * Deliveries on the run table:
 *
 *   delivery  pk DELIVERY#<id>  sk DELIVERY  data (JSON), version, expiresAt
 *             pending: active  gsi3pk DELIVERY  gsi3sk dueAt   (the reconciler's list)
 *
 * They share the `active` index with runs under their own partition, so the reconciler reads
 * each list with one query and neither sees the other's items.
 */
export class DynamoDeliveryStore implements DeliveryStore {
  private readonly retentionSec: number;

  constructor(
    private readonly api: DynamoApi,
    private readonly table: string,
    /** The delivery is the dedupe marker: a redelivery within this time is recognised. */
    retentionDays = 90,
  ) {
    this.retentionSec = retentionDays * 86_400;
  }

  async createDelivery(delivery: Delivery, dueAt: number): Promise<"created" | "exists"> {
    try {
      await this.api.putItem({ TableName: this.table, Item: this.item(delivery, 1, dueAt), Expected: { pk: { Exists: false } } });
      return "created";
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return "exists";
      throw err;
    }
  }

  async getDelivery(id: string): Promise<StoredDelivery | undefined> {
    const out = await this.api.getItem({ TableName: this.table, Key: key(id), ConsistentRead: true });
    return out.Item ? toStored(out.Item) : undefined;
  }

  async saveDelivery(delivery: Delivery, expected: number, dueAt?: number): Promise<StoredDelivery | undefined> {
    const version = expected + 1;
    try {
      await this.api.putItem({ TableName: this.table, Item: this.item(delivery, version, dueAt), Expected: { version: { Value: N(expected) } } });
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return undefined;
      throw err;
    }
    return { delivery, version };
  }

  async dueDeliveries(now: number, limit: number): Promise<StoredDelivery[]> {
    const out = await this.api.query({
      TableName: this.table,
      IndexName: "active",
      KeyConditionExpression: "gsi3pk = :d AND gsi3sk < :now",
      ExpressionAttributeValues: { ":d": S("DELIVERY"), ":now": N(now) },
      Limit: limit,
    });
    return (out.Items ?? []).map(toStored);
  }

  private item(delivery: Delivery, version: number, dueAt: number | undefined): Record<string, AttributeValue> {
    const item: Record<string, AttributeValue> = {
      ...key(delivery.id),
      data: S(JSON.stringify(delivery)),
      version: N(version),
      expiresAt: N(Math.floor(delivery.receivedAt / 1000) + this.retentionSec),
    };
    if (delivery.status === "pending") {
      item.gsi3pk = S("DELIVERY");
      item.gsi3sk = N(dueAt ?? 0);
    }
    return item;
  }
}

function key(id: string): Record<string, AttributeValue> {
  return { pk: S(`DELIVERY#${id}`), sk: S("DELIVERY") };
}

function toStored(item: Record<string, AttributeValue>): StoredDelivery {
  return { delivery: Delivery.parse(JSON.parse(item.data?.S ?? "null")), version: Number(item.version?.N) };
}
