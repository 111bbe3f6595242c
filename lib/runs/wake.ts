import { settleClick, type SettleDeps } from "../chat/settle.ts";
import { parseSlackClick } from "../chat/slack-payload.ts";
import type { WakeUp } from "../queue/port.ts";
import { advanceRun, type AdvanceDeps } from "./advance.ts";
import { runQueuedRelease } from "./queued-release.ts";
import { resolveDelivery, type ResolveDeps } from "./resolve-delivery.ts";

export interface WakeDeps {
  advance: AdvanceDeps;
  resolve: ResolveDeps;
  settle: SettleDeps;
}

/** What every queue consumer (Lambda's SQS batch, the local poller) does with one message. */
export function handleWakeUp(deps: WakeDeps, wake: WakeUp): Promise<unknown> {
  if ("runId" in wake) return advanceRun(deps.advance, wake.runId);
  if ("deliveryId" in wake) return resolveDelivery(deps.resolve, wake.deliveryId);
  if ("slackClick" in wake) return settleClick(deps.settle, parseSlackClick(wake.slackClick));
  if (!deps.advance.releases) throw new Error("this worker has no release store configured");
  return runQueuedRelease({ ...deps.advance.releases, log: deps.advance.log }, wake.env, wake.releaseId);
}
