import * as z from "zod";
import type { Logger } from "../log.ts";
import { WakeUp } from "./port.ts";

/** The fields of an SQS-triggered Lambda event that the worker reads. */
export const SqsEvent = z.object({
  Records: z.array(z.object({ messageId: z.string(), body: z.string() }).passthrough()),
});
export type SqsEvent = z.infer<typeof SqsEvent>;

export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/**
 * Runs `handle` for every wake-up in a batch and reports only the failed messages
 * (partial batch response), so one bad run does not send its neighbours back to the queue.
 * A body that is not a wake-up can never succeed: it is logged and dropped, not retried.
 */
export async function handleSqsBatch(event: unknown, log: Logger, handle: (w: WakeUp) => Promise<unknown>): Promise<BatchResponse> {
  const batch = SqsEvent.parse(event);
  const failures: { itemIdentifier: string }[] = [];
  await Promise.all(
    batch.Records.map(async (record) => {
      const wake = parseWakeUp(record.body);
      if (!wake) {
        log.warn({ messageId: record.messageId }, "dropped a message that is not a wake-up");
        return;
      }
      try {
        await handle(wake);
      } catch (err) {
        log.warn({ err, messageId: record.messageId, ...wake }, "wake-up failed; the queue will retry");
        failures.push({ itemIdentifier: record.messageId });
      }
    }),
  );
  return { batchItemFailures: failures };
}

export function parseWakeUp(body: string): WakeUp | undefined {
  try {
    const r = WakeUp.safeParse(JSON.parse(body));
    return r.success ? r.data : undefined;
  } catch {
    return undefined; // not JSON: same as any other foreign message
  }
}
