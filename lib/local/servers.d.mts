export interface StartedServers {
  dynamodb: string;
  sqs: string;
  close(): Promise<unknown>;
}
export function startServers(opts?: { dataDir?: string; host?: string; dynamoPort?: number; sqsPort?: number }): Promise<StartedServers>;
