import type { Run } from "../pipeline/run.ts";

/**
 * What people hear of a run: commit statuses and deployments on the provider, chat messages.
 * Called as the run changes; an observer must return at once and never throw (a provider or a
 * chat that is down must neither fail nor delay a run).
 */
export interface RunObserver {
  /** The run went from `before` to `after`: a stage started, ended, or waits. */
  changed?(before: Run | undefined, after: Run): void;
  /** A stage began to wait for approvals. */
  approvalRequested?(run: Run, stage: number): void;
}
