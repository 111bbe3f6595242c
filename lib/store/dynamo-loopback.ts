import { loopbackJsonApi } from "../aws/loopback.ts";
import type { DynamoApi } from "./dynamo-api.ts";

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
