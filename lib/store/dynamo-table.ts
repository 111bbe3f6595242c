import { isDynamoError, type DynamoApi } from "./dynamo-api.ts";

/**
 * Creates the table and its indexes when missing: the local runtime and tests do; on AWS the
 * stack does (infra/stack.ts, whose test checks it declares the same keys and indexes).
 */
export async function ensureTable(api: DynamoApi, table: string): Promise<void> {
  try {
    await api.describeTable({ TableName: table });
    return;
  } catch (err) {
    if (!isDynamoError(err, "ResourceNotFoundException")) throw err;
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
    await api.createTable({
      TableName: table,
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
    });
  } catch (err) {
    // Another process created it first: fine.
    if (!isDynamoError(err, "ResourceInUseException")) throw err;
  }
}
