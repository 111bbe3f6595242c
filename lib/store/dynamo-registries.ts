import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { Registry, type RegistryStore } from "../registry/registry.ts";
import { isDynamoError, putItemWithin, queryAll, type DynamoApi } from "./dynamo-api.ts";

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
    const data = await this.attribute(host, "data");
    return data === undefined ? undefined : Registry.parse(JSON.parse(data));
  }

  async registrySecret(host: string): Promise<string | undefined> {
    return this.attribute(host, "secret");
  }

  async listRegistries(): Promise<Registry[]> {
    // Pages are counted in whole items, secrets included: a long list takes several.
    const items = await queryAll(this.api, {
      TableName: this.table,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": S("REGISTRIES") },
      ProjectionExpression: "#d",
      ExpressionAttributeNames: { "#d": "data" },
    });
    return items.map((item) => Registry.parse(JSON.parse(item.data?.S ?? "null")));
  }

  async deleteRegistry(host: string): Promise<boolean> {
    try {
      // Conditional rather than ALL_OLD: the answer need not carry the secret back.
      await this.api.deleteItem({ TableName: this.table, Key: { pk: S("REGISTRIES"), sk: S(host) }, ConditionExpression: "attribute_exists(sk)" });
      return true;
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return false;
      throw err;
    }
  }

  /** One attribute of the registry's item, read alone: a read of the registration never carries the secret. */
  private async attribute(host: string, name: "data" | "secret"): Promise<string | undefined> {
    const out = await this.api.getItem({
      TableName: this.table,
      Key: { pk: S("REGISTRIES"), sk: S(host) },
      ConsistentRead: true,
      ProjectionExpression: "#a",
      ExpressionAttributeNames: { "#a": name },
    });
    return out.Item?.[name]?.S;
  }
}
