export interface StartedServers {
  dynamodb: string;
  sqs: string;
  close(): Promise<unknown>;
}
export interface StartedServer {
  url: string;
  close(): Promise<unknown>;
}
export function startDynamo(opts?: { dataDir?: string; host?: string; port?: number }): Promise<StartedServer>;
export function startSqs(opts?: { host?: string; port?: number }): Promise<StartedServer>;
export function startServers(opts?: { dataDir?: string; host?: string; dynamoPort?: number; sqsPort?: number }): Promise<StartedServers>;
