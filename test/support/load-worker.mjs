// The load generator's thread (see load.ts). Plain .mjs so a Worker runs it without a TS loader.
// Requests go out on a fixed timetable, not when answers come back: a slow or stuck server must
// show up as latency and failures, not as fewer requests sent.
import http from "node:http";
import { parentPort, workerData } from "node:worker_threads";

const { url, rps, host } = workerData;
const TIMEOUT_MS = 5_000;
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const records = [];
const inFlight = new Set();
const startedAt = Date.now();
const interval = 1000 / rps;
let sent = 0;
let stopping = false;
let timer;

function send() {
  // start: the wall clock, shared with the marks of the other thread; latency: the monotonic
  // clock, to a fraction of a millisecond (single-digit-ms latencies are what is compared).
  const t0 = performance.now();
  const record = { start: Date.now(), latency: 0, ok: false, reason: "unfinished", body: "" };
  records.push(record);
  const done = new Promise((resolve) => {
    let settled = false;
    const finish = (ok, reason, body) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      Object.assign(record, { latency: performance.now() - t0, ok, reason, body });
      resolve();
    };
    const req = http.get(url, { agent, ...(host ? { headers: { host } } : {}) }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const ok = res.statusCode >= 200 && res.statusCode < 300;
        finish(ok, ok ? undefined : `status ${res.statusCode}`, Buffer.concat(chunks).toString("utf8").trim());
      });
      res.on("error", (err) => finish(false, err.code ?? err.message, ""));
    });
    req.on("error", (err) => finish(false, err.code ?? err.message, ""));
    // The whole exchange, body included, within TIMEOUT_MS (req.setTimeout only counts idle time).
    const deadline = setTimeout(() => req.destroy(Object.assign(new Error("timeout"), { code: `timeout after ${TIMEOUT_MS} ms` })), TIMEOUT_MS);
  });
  inFlight.add(done);
  void done.then(() => inFlight.delete(done));
}

// Catch up on every slot that is due, so a late timer does not lower the rate.
function tick() {
  if (stopping) return;
  const due = Math.floor((Date.now() - startedAt) / interval) + 1;
  while (sent < due) {
    sent++;
    send();
  }
  timer = setTimeout(tick, Math.max(0, startedAt + sent * interval - Date.now()));
}

parentPort.on("message", async (message) => {
  if (message.type !== "stop") return;
  stopping = true;
  clearTimeout(timer);
  // Every request has its own 5 s deadline, so this wait is bounded; the extra second is slack.
  let slack;
  await Promise.race([Promise.all(inFlight), new Promise((resolve) => (slack = setTimeout(resolve, TIMEOUT_MS + 1_000)))]);
  clearTimeout(slack);
  const now = Date.now();
  for (const record of records) if (record.reason === "unfinished") record.latency = now - record.start;
  agent.destroy();
  parentPort.postMessage({ type: "report", records });
  parentPort.close();
});

parentPort.postMessage({ type: "ready" });
tick();
