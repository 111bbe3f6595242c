import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { Registry, type RegistryStore } from "../registry/registry.ts";
import { putItemWithin, type DynamoApi } from "./dynamo-api.ts";

const S = (s: string): AttributeValue => ({ S: s });

/**
 * Registries in the run table, one partition (they are few):
 *   REGISTRIES  <host>  data: the registration as GET shows it; secret: its password or token
 * The secret is an attribute of its own so that nothing that reads `data` can hand it out;
 * DynamoDB encrypts the table at rest.
 */
export class DynamoRegistryStore implements RegistryStore {
  constructor(
    private readonly api: DynamoApi,
    private readonly table: string,
  ) {}

  async putRegistry(registry: Registry, secret: string | undefined): Promise<void> {
    const item = { pk: S("REGISTRIES"), sk: S(registry.host), data: S(JSON.stringify(registry)), ...(secret ? { secret: S(secret) } : {}) };
    await putItemWithin(this.api, { TableName: this.table, Item: item }, `registry ${registry.host}`);
  }

  async getRegistry(host: string): Promise<Registry | undefined> {
    const item = await this.item(host, "pk, sk, #d");
    return item ? Registry.parse(JSON.parse(item.data?.S ?? "null")) : undefined;
  }

  async registrySecret(host: string): Promise<string | undefined> {
    return (await this.item(host, "secret"))?.secret?.S;
  }

  async listRegistries(): Promise<Registry[]> {
    const out = await this.api.query({
      TableName: this.table,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": S("REGISTRIES") },
      ProjectionExpression: "#d",
      ExpressionAttributeNames: { "#d": "data" },
    });
    return (out.Items ?? []).map((item) => Registry.parse(JSON.parse(item.data?.S ?? "null")));
  }

  async deleteRegistry(host: string): Promise<boolean> {
    const out = await this.api.deleteItem({ TableName: this.table, Key: { pk: S("REGISTRIES"), sk: S(host) }, ReturnValues: "ALL_OLD" });
    return out.Attributes !== undefined;
  }

  private async item(host: string, projection: string): Promise<Record<string, AttributeValue> | undefined> {
    const out = await this.api.getItem({
      TableName: this.table,
      Key: { pk: S("REGISTRIES"), sk: S(host) },
      ConsistentRead: true,
      ProjectionExpression: projection,
      ...(projection.includes("#d") ? { ExpressionAttributeNames: { "#d": "data" } } : {}),
    });
    return out.Item;
  }
}
