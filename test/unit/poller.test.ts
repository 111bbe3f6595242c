import pino from "pino";
import { describe, expect, it } from "vitest";
import { startPoller } from "../../lib/local/poller.ts";
import type { QueueConsumer, Received } from "../../lib/queue/port.ts";

const log = pino({ level: "silent" });

/** A queue in memory whose receives the test answers by hand, and whose sends notify like SqsQueue's. */
function fakeQueue() {
  const waiting: Received[] = [];
  const listeners = new Set<() => void>();
  const receives: ((messages: Received[]) => void)[] = [];
  let receiveCalls = 0;
  const consumer: QueueConsumer = {
    receive: () => {
      receiveCalls++;
      return new Promise((resolve) => receives.push(resolve));
    },
    ack: async () => undefined,
    retryLater: async () => undefined,
  };
  return {
    consumer,
    onSend: (listener: () => void) => (listeners.add(listener), () => listeners.delete(listener)),
    send(runId: string) {
      waiting.push({ body: JSON.stringify({ runId }), receipt: runId, receiveCount: 1 });
      for (const l of listeners) l();
    },
    /** Answers the oldest pending receive with what is waiting now (or `[]`). */
    answer(messages: Received[] = waiting.splice(0)) {
      receives.shift()?.(messages);
    },
    get receiveCalls() {
      return receiveCalls;
    },
  };
}

const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!ok()) throw new Error(`never: ${what}`);
};

describe("the local poller's wake-ups", () => {
  it("a send while a receive is in flight (which missed it) is received at once, not after the idle pause", async () => {
    const q = fakeQueue();
    const handled: string[] = [];
    // An idle pause longer than the test: only the send's wake-up can bring the message in.
    const poller = startPoller({ consumer: q.consumer, onSend: q.onSend, idleMs: 60_000, log, concurrency: 2, handle: async (w) => void handled.push("runId" in w ? w.runId : JSON.stringify(w)) });
    await until("the first receive", () => q.receiveCalls === 1);
    q.send("r1"); // lands after the receive looked
    q.answer([]);
    await until("a second receive", () => q.receiveCalls === 2);
    q.answer();
    await until("the message handled", () => handled.length === 1);
    expect(handled).toEqual(["r1"]);
    const stopped = poller.stop();
    q.answer([]);
    await stopped;
  });

  it("a send during the idle pause ends it", async () => {
    const q = fakeQueue();
    const handled: string[] = [];
    const poller = startPoller({ consumer: q.consumer, onSend: q.onSend, idleMs: 60_000, log, concurrency: 2, handle: async (w) => void handled.push("runId" in w ? w.runId : JSON.stringify(w)) });
    await until("the first receive", () => q.receiveCalls === 1);
    q.answer([]); // nothing yet: the poller idles
    await new Promise((r) => setTimeout(r, 10));
    expect(q.receiveCalls).toBe(1);
    q.send("r2");
    await until("a second receive", () => q.receiveCalls === 2);
    q.answer();
    await until("the message handled", () => handled.length === 1);
    expect(handled).toEqual(["r2"]);
    const stopped = poller.stop();
    q.answer([]);
    await stopped;
  });
});
