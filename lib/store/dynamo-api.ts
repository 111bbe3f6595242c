import {
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
import { loopbackJsonApi } from "../aws/loopback.ts";

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

/** DynamoDB's JSON protocol straight to a server on this machine (the embedded dynalite). */
export function loopbackDynamoApi(endpoint: string): DynamoApi {
  const call = loopbackJsonApi(endpoint, "DynamoDB_20120810");
  return {
    putItem: call("PutItem"),
    getItem: call("GetItem"),
    deleteItem: call("DeleteItem"),
    query: call("Query"),
    describeTable: call("DescribeTable"),
    createTable: call("CreateTable"),
  };
}

export function isDynamoError(err: unknown, name: string): boolean {
  return err instanceof Error && err.name === name;
}
