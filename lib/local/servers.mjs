// Embedded AWS-compatible servers for the local runtime and tests: dynalite (DynamoDB API)
// and local-aws-sqs (SQS JSON protocol). Plain JS so each can run in a worker thread of its
// own, off the event loop that answers webhooks and off each other's.
import { parentPort, workerData } from "node:worker_threads";
import dynalite from "dynalite";
import { createSqsServer } from "local-aws-sqs";

export async function startDynamo({ dataDir, host = "127.0.0.1", port = 0 } = {}) {
  const server = dynalite({ path: dataDir || undefined, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise((resolve, reject) => server.listen(port, host, (err) => (err ? reject(err) : resolve())));
  return { url: `http://${host}:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

export async function startSqs({ host = "127.0.0.1", port = 0 } = {}) {
  const server = await createSqsServer({ port, hostname: host, emulateQueueCreationLifecycle: false });
  const address = server.address();
  return { url: `http://${host}:${typeof address === "object" && address ? address.port : port}`, close: () => new Promise((r) => server.close(r)) };
}

export async function startServers({ dataDir, host = "127.0.0.1", dynamoPort = 0, sqsPort = 0 } = {}) {
  const [dynamo, sqs] = await Promise.all([startDynamo({ dataDir, host, port: dynamoPort }), startSqs({ host, port: sqsPort })]);
  return { dynamodb: dynamo.url, sqs: sqs.url, close: () => Promise.all([dynamo.close(), sqs.close()]) };
}

if (parentPort && workerData?.hoistServer) {
  const { kind, ...opts } = workerData.hoistServer;
  const server = kind === "dynamodb" ? await startDynamo(opts) : await startSqs(opts);
  parentPort.postMessage({ url: server.url });
}
