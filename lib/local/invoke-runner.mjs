// One Lambda invocation in this fresh process, as Lambda's runtime makes it: imports the
// function's module (its source under tsx, or its bundle), calls `handler(event, context)`
// and writes the answer, or the error, as JSON to the file named last. Plain JavaScript, so
// that a bundle runs on bare Node. Usage: node invoke-runner.mjs MODULE EVENT_FILE ANSWER_FILE NAME
import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";

const [modulePath, eventPath, answerPath, name] = process.argv.slice(2);
const started = Date.now();
const TIMEOUT_MS = 120_000;
const context = {
  functionName: `hoist-${name}`,
  functionVersion: "$LATEST",
  invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:hoist-${name}`,
  memoryLimitInMB: "1024",
  awsRequestId: randomUUID(),
  logGroupName: `/aws/lambda/hoist-${name}`,
  logStreamName: "local",
  callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => Math.max(0, TIMEOUT_MS - (Date.now() - started)),
};

let answer;
try {
  const event = JSON.parse(await readFile(eventPath, "utf8"));
  const loaded = performance.now();
  const mod = await import(pathToFileURL(modulePath).href);
  if (typeof mod.handler !== "function") throw new Error(`${modulePath} exports no handler`);
  const imported = performance.now();
  const result = await mod.handler(event, context);
  // The wall clock's time of the answer, which the parent compares with its own at spawn: what
  // comes after (writing this file, the process's exit) is the runner's, not the function's.
  const answered = performance.now();
  answer = { ok: true, result: result ?? null, ms: { import: imported - loaded, handler: answered - imported }, answeredAt: performance.timeOrigin + answered };
} catch (err) {
  answer = { ok: false, error: { name: err?.name ?? "Error", message: String(err?.message ?? err) } };
}
await writeFile(answerPath, JSON.stringify(answer));
// A function's clients keep sockets and timers open; Lambda freezes them, here the process ends.
process.exit(0);
