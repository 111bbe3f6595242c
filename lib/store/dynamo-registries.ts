import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { Registry, type RegistryStore } from "../registry/registry.ts";
import { isDynamoError, putItemWithin, type DynamoApi } from "./dynamo-api.ts";

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
    const registries: Registry[] = [];
    // A query reads at most 1 MB of whole items (secrets included) per page.
    let from: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.api.query({
        TableName: this.table,
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": S("REGISTRIES") },
        ProjectionExpression: "#d",
        ExpressionAttributeNames: { "#d": "data" },
        ...(from ? { ExclusiveStartKey: from } : {}),
      });
      for (const item of out.Items ?? []) registries.push(Registry.parse(JSON.parse(item.data?.S ?? "null")));
      from = out.LastEvaluatedKey;
    } while (from);
    return registries;
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
