import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type { Clock } from "../clock.ts";
import { BadInputError } from "../errors.ts";
import { isDynamoError, type DynamoApi } from "./dynamo-api.ts";
import type { OnceStore } from "./once.ts";

/** Keys are built from outside input (a signature, a nonce): bounded well under DynamoDB's 2 KB key. */
export const MAX_ONCE_KEY = 512;

/**
 * Markers on the run table:
 *
 *   once  pk ONCE#<key>  sk ONCE  expiresAt (epoch s, the table's TTL attribute)
 *
 * DynamoDB's TTL deletes an expired item only eventually (within days), so an item still
 * present after its expiresAt does not count: the condition lets a claim overwrite it. Unlike
 * the other stores' conditions this one is a ConditionExpression, not the `Expected` form:
 * dynalite evaluates `Expected` with ConditionalOperator OR wrongly (it refuses an expired
 * marker), and a claim comes with a person's click, so the parser's cost does not matter here.
 */
export class DynamoOnceStore implements OnceStore {
  constructor(
    private readonly api: DynamoApi,
    private readonly table: string,
    private readonly clock: Clock,
  ) {}

  async claimOnce(key: string, ttlMs: number): Promise<boolean> {
    if (key.length === 0 || key.length > MAX_ONCE_KEY) throw new BadInputError(`a once-key is 1 to ${MAX_ONCE_KEY} characters`);
    const nowSec = Math.floor(this.clock.now() / 1000);
    try {
      await this.api.putItem({
        TableName: this.table,
        Item: { pk: S(`ONCE#${key}`), sk: S("ONCE"), expiresAt: N(nowSec + Math.ceil(ttlMs / 1000)) },
        ConditionExpression: "attribute_not_exists(pk) OR expiresAt < :now",
        ExpressionAttributeValues: { ":now": N(nowSec) },
      });
      return true;
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return false;
      throw err;
    }
  }
}

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });
