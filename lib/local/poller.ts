import type { Logger } from "../log.ts";
import type { QueueConsumer } from "../queue/port.ts";
import { parseWakeUp } from "../queue/lambda.ts";
import type { WakeUp } from "../queue/port.ts";

export interface PollerOptions {
  consumer: QueueConsumer;
  /** Subscribes to "a message was just sent from this process"; returns the unsubscriber. */
  onSend?: (listener: () => void) => () => void;
  /** Longest idle pause between polls; messages from other processes wait at most this. */
  idleMs?: number;
  log: Logger;
  concurrency: number;
  handle: (w: WakeUp) => Promise<unknown>;
}

/**
 * The local runtime's stand-in for Lambda's SQS polling. local-aws-sqs answers a long poll
 * only when its wait ends, even if a message arrives (measured: a 5 s wait returned after
 * 5 s), so the poller short-polls and, when idle, sleeps until a send from this process
 * wakes it or `idleMs` passes. It runs up to
 * `concurrency` wake-ups at once, deletes each on success, and on failure makes it
 * visible again with a growing back-off (SQS moves it to the DLQ after maxReceiveCount).
 */
export function startPoller(opts: PollerOptions): { stop: () => Promise<void> } {
  let running = true;
  const inFlight = new Set<Promise<void>>();
  let wake: (() => void) | undefined;
  // A send seen while no idle wait was on (a receive in flight may have missed its message):
  // the next idle wait ends at once instead of sleeping over it.
  let sent = false;
  const unsubscribe = opts.onSend?.(() => {
    sent = true;
    wake?.();
  });
  const idle = () =>
    new Promise<void>((resolve) => {
      if (sent || !running) {
        sent = false;
        return resolve();
      }
      const timer = setTimeout(done, opts.idleMs ?? 250);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  const loop = async () => {
    while (running) {
      const free = opts.concurrency - inFlight.size;
      if (free <= 0) {
        await Promise.race(inFlight);
        continue;
      }
      let messages;
      // Cleared before the receive: a send from here on may come too late for it.
      sent = false;
      try {
        messages = await opts.consumer.receive(free, 0);
      } catch (err) {
        if (!running) break;
        opts.log.warn({ err }, "queue receive failed; retrying");
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (messages.length === 0) await idle();
      for (const m of messages) {
        const task = (async () => {
          const wake = parseWakeUp(m.body);
          try {
            if (wake) await opts.handle(wake);
            else opts.log.warn("dropped a message that is not a wake-up");
            await opts.consumer.ack(m.receipt);
          } catch (err) {
            opts.log.warn({ err, ...wake }, "wake-up failed; retrying later");
            // If even this fails, the message reappears when its visibility timeout ends.
            await opts.consumer.retryLater(m.receipt, Math.min(60, 2 ** m.receiveCount)).catch(() => undefined);
          }
        })();
        inFlight.add(task);
        void task.finally(() => inFlight.delete(task));
      }
    }
  };
  const done = loop();
  return {
    stop: async () => {
      running = false;
      unsubscribe?.();
      wake?.();
      await done;
      await Promise.all(inFlight);
    },
  };
}
