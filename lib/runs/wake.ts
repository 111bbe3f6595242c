import type { WakeUp } from "../queue/port.ts";
import { advanceRun, type AdvanceDeps } from "./advance.ts";
import { resolveDelivery, type ResolveDeps } from "./resolve-delivery.ts";

export interface WakeDeps {
  advance: AdvanceDeps;
  resolve: ResolveDeps;
}

/** What every queue consumer (Lambda's SQS batch, the local poller) does with one message. */
export function handleWakeUp(deps: WakeDeps, wake: WakeUp): Promise<unknown> {
  return "runId" in wake ? advanceRun(deps.advance, wake.runId) : resolveDelivery(deps.resolve, wake.deliveryId);
}

/** The message's subject, for log lines. */
export function subjectOf(wake: WakeUp): { run: string } | { delivery: string } {
  return "runId" in wake ? { run: wake.runId } : { delivery: wake.deliveryId };
}
