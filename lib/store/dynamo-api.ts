import {
  type AttributeValue,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type CreateTableCommandInput,
  type CreateTableCommandOutput,
  type DeleteItemCommandInput,
  type DeleteItemCommandOutput,
  type DescribeTableCommandInput,
  type DescribeTableCommandOutput,
  type DynamoDBClient,
  type GetItemCommandInput,
  type GetItemCommandOutput,
  type PutItemCommandInput,
  type PutItemCommandOutput,
  type QueryCommandInput,
  type QueryCommandOutput,
} from "@aws-sdk/client-dynamodb";
import { RecordTooLargeError } from "./too-large.ts";

type Out<T> = Omit<T, "$metadata">;

/**
 * The DynamoDB operations the run store uses, in the SDK's shapes (which are the wire JSON).
 * A failure is an error whose `name` is DynamoDB's error type (`ConditionalCheckFailedException`,
 * `ResourceNotFoundException`, ...), whichever transport carried the call.
 */
export interface DynamoApi {
  putItem(input: PutItemCommandInput): Promise<Out<PutItemCommandOutput>>;
  getItem(input: GetItemCommandInput): Promise<Out<GetItemCommandOutput>>;
  deleteItem(input: DeleteItemCommandInput): Promise<Out<DeleteItemCommandOutput>>;
  query(input: QueryCommandInput): Promise<Out<QueryCommandOutput>>;
  describeTable(input: DescribeTableCommandInput): Promise<Out<DescribeTableCommandOutput>>;
  createTable(input: CreateTableCommandInput): Promise<Out<CreateTableCommandOutput>>;
}

/** DynamoDB through the AWS SDK: signing, credentials, retries and endpoints for AWS itself. */
export function sdkDynamoApi(client: DynamoDBClient): DynamoApi {
  return {
    putItem: (input) => client.send(new PutItemCommand(input)),
    getItem: (input) => client.send(new GetItemCommand(input)),
    deleteItem: (input) => client.send(new DeleteItemCommand(input)),
    query: (input) => client.send(new QueryCommand(input)),
    describeTable: (input) => client.send(new DescribeTableCommand(input)),
    createTable: (input) => client.send(new CreateTableCommand(input)),
  };
}

/** Every item a query matches, page after page (DynamoDB answers at most 1 MB of items a page). */
export async function queryAll(api: DynamoApi, input: QueryCommandInput): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await api.query({ ...input, ...(start ? { ExclusiveStartKey: start } : {}) });
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

export function isDynamoError(err: unknown, name: string): boolean {
  return err instanceof Error && err.name === name;
}

/** DynamoDB's item limit: attribute names and values, UTF-8. */
export const ITEM_LIMIT_BYTES = 400 * 1024;

/**
 * Writes an item, refusing before the call one that DynamoDB would refuse for its size (so
 * the caller learns it can never be written, rather than an error to retry), and mapping
 * DynamoDB's own refusal to the same RecordTooLargeError. `what` names the record in the message.
 */
export async function putItemWithin(api: DynamoApi, input: PutItemCommandInput, what: string): Promise<Out<PutItemCommandOutput>> {
  const bytes = itemBytes(input.Item ?? {});
  if (bytes > ITEM_LIMIT_BYTES) throw new RecordTooLargeError(`${what} would take ${bytes} bytes, over DynamoDB's item limit of ${ITEM_LIMIT_BYTES}`, { bytes });
  try {
    return await api.putItem(input);
  } catch (err) {
    if (isDynamoError(err, "ValidationException") && /item size has exceeded/i.test((err as Error).message))
      throw new RecordTooLargeError(`${what} is over DynamoDB's item limit: ${(err as Error).message}`, { cause: err });
    throw err;
  }
}

/**
 * An item's size as DynamoDB counts it: each attribute's name and value in UTF-8; a number
 * about one byte per two significant digits, plus one.
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
 */
export function itemBytes(item: Record<string, AttributeValue>): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + valueBytes(value), 0);
}

function valueBytes(value: AttributeValue): number {
  if (value.S !== undefined) return utf8(value.S);
  if (value.N !== undefined) return Math.ceil(value.N.replace(/\D/g, "").length / 2) + 1;
  // Types the stores do not write: their JSON, never less than DynamoDB counts.
  return utf8(JSON.stringify(value));
}

function utf8(s: string): number {
  return new TextEncoder().encode(s).length;
}
