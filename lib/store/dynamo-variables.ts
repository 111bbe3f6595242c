import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { ulid } from "ulid";
import type { Clock } from "../clock.ts";
import { ConflictError, InternalError } from "../errors.ts";
import { MAX_VARIABLES, Variable, type VariableStore, type VariableValue } from "../release/variables.ts";
import { isDynamoError, putItemWithin, queryAll, type DynamoApi } from "./dynamo-api.ts";

const S = (s: string): AttributeValue => ({ S: s });
const pk = (env: string) => S(`VARS#${env}`);

/**
 * An environment's variables in the run table, one partition per environment:
 *   VARS#<env>  <name>  data: the variable as the API shows it; value: its value
 * `data` holds a plain variable's value and never a secret's, so a listing reads `data` alone
 * and cannot hand a secret out; `value` holds every value, secret or not, and only a release
 * reads it. A plain value is thus stored twice: the API's body limit (64 KiB) keeps the item
 * far under DynamoDB's 400 KB. DynamoDB encrypts the table at rest.
 */
export class DynamoVariableStore implements VariableStore {
  constructor(
    private readonly api: DynamoApi,
    private readonly table: string,
    private readonly clock: Clock,
  ) {}

  async putVariable(env: string, name: string, value: string, secret: boolean): Promise<Variable> {
    const before = await this.shown(env, name);
    // Set again without --secret, a secret would be shown and interpolated from then on: a
    // slip of the flag must not do that, removing it first says it was meant.
    if (before?.secret && !secret)
      throw new ConflictError(`${name} is a secret in ${env}: set it again as a secret, or remove it first (\`hoist env vars rm ${env} ${name}\`) to make it a plain variable`);
    if (!before) await this.roomFor(env, name);
    const variable: Variable = { name, secret, ...(secret ? {} : { value }), version: ulid().toLowerCase(), updatedAt: this.clock.now() };
    const item = { pk: pk(env), sk: S(name), data: S(JSON.stringify(variable)), value: S(value) };
    await putItemWithin(this.api, { TableName: this.table, Item: item }, `variable ${name} of ${env}`);
    return variable;
  }

  async listVariables(env: string): Promise<Variable[]> {
    const items = await this.query(env, "#d", { "#d": "data" });
    return items.map((item) => Variable.parse(JSON.parse(item.data?.S ?? "null")));
  }

  async deleteVariable(env: string, name: string): Promise<boolean> {
    try {
      // Conditional rather than ALL_OLD: the answer need not carry a secret back.
      await this.api.deleteItem({ TableName: this.table, Key: { pk: pk(env), sk: S(name) }, ConditionExpression: "attribute_exists(sk)" });
      return true;
    } catch (err) {
      if (isDynamoError(err, "ConditionalCheckFailedException")) return false;
      throw err;
    }
  }

  async variableValues(env: string): Promise<VariableValue[]> {
    const items = await this.query(env, "#d, #v", { "#d": "data", "#v": "value" });
    return items.map((item) => {
      const variable = Variable.parse(JSON.parse(item.data?.S ?? "null"));
      const value = item.value?.S;
      // Every put writes both: a record without its value was not written by this store.
      if (value === undefined) throw new InternalError(`variable ${variable.name} of ${env} has no value attribute`);
      return { name: variable.name, value, secret: variable.secret, version: variable.version };
    });
  }

  /**
   * Refuses a new variable past MAX_VARIABLES. Counted, then written: two creations at once can
   * both pass at the limit (dynalite, which stands in for DynamoDB locally, has no transactions to
   * count with), so an environment can exceed it by the number of concurrent creations, never
   * by a loop of them.
   */
  private async roomFor(env: string, name: string): Promise<void> {
    const count = (await this.query(env, "sk")).length;
    if (count >= MAX_VARIABLES)
      throw new ConflictError(`${env} has ${count} variables, the most an environment holds (${MAX_VARIABLES}): remove some with \`hoist env vars rm ${env} NAME\` before adding ${name}`);
  }

  /** The variable as the API shows it (never a secret's value), or undefined. */
  private async shown(env: string, name: string): Promise<Variable | undefined> {
    const out = await this.api.getItem({
      TableName: this.table,
      Key: { pk: pk(env), sk: S(name) },
      ConsistentRead: true,
      ProjectionExpression: "#d",
      ExpressionAttributeNames: { "#d": "data" },
    });
    const data = out.Item?.data?.S;
    return data === undefined ? undefined : Variable.parse(JSON.parse(data));
  }

  /** Every item of the environment's partition, only the projected attributes; pages as DynamoDB cuts them. */
  private query(env: string, projection: string, names?: Record<string, string>): Promise<Record<string, AttributeValue>[]> {
    return queryAll(this.api, {
      TableName: this.table,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": pk(env) },
      ConsistentRead: true,
      ProjectionExpression: projection,
      ...(names ? { ExpressionAttributeNames: names } : {}),
    });
  }
}
