// Embedded AWS-compatible servers for the local runtime and tests: dynalite (DynamoDB API)
// and local-aws-sqs (SQS JSON protocol). Plain JS so it can run in a worker thread,
// off the event loop that answers webhooks. Posts { dynamodb, sqs } URLs once listening.
import { parentPort, workerData } from "node:worker_threads";
import dynalite from "dynalite";
import { createSqsServer } from "local-aws-sqs";

export async function startServers({ dataDir, host = "127.0.0.1", dynamoPort = 0, sqsPort = 0 } = {}) {
  const dynamo = dynalite({ path: dataDir || undefined, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise((resolve, reject) => dynamo.listen(dynamoPort, host, (err) => (err ? reject(err) : resolve())));
  const sqs = await createSqsServer({ port: sqsPort, hostname: host, emulateQueueCreationLifecycle: false });
  const sqsAddress = sqs.address();
  return {
    dynamodb: `http://${host}:${dynamo.address().port}`,
    sqs: `http://${host}:${typeof sqsAddress === "object" && sqsAddress ? sqsAddress.port : sqsPort}`,
    close: () => Promise.all([new Promise((r) => dynamo.close(r)), new Promise((r) => sqs.close(r))]),
  };
}

if (parentPort && workerData?.hoistServers) {
  const servers = await startServers(workerData.hoistServers);
  parentPort.postMessage({ dynamodb: servers.dynamodb, sqs: servers.sqs });
}
