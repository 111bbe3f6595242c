import type { ApprovalRequest, ChatNotifier, Notice } from "../chat/port.ts";
import type { Run } from "../pipeline/run.ts";
import type { RunReporter } from "../scm/report.ts";
import type { RunObserver } from "./observer.ts";

/** The stage waiting at its gate, as people are asked to decide it. */
export function approvalRequestOf(run: Run, stage: number, runUrl: string): ApprovalRequest | undefined {
  const s = run.stages[stage];
  const rule = s?.gate?.rule;
  if (!s || !rule) return undefined;
  return {
    runId: run.id,
    stage,
    stageName: s.name,
    pipeline: run.pipeline,
    repo: run.repo.fullName,
    provider: run.repo.provider,
    ...(run.branch !== undefined ? { branch: run.branch } : {}),
    ...(run.tag !== undefined ? { tag: run.tag } : {}),
    sha: run.sha,
    ...(run.trigger.type !== "schedule" && run.trigger.actor ? { pusher: run.trigger.actor } : {}),
    ...(s.spec.kind === "deploy" ? { environment: s.spec.environment } : {}),
    approvers: rule.approvers,
    count: rule.count,
    expiresAt: rule.expiresAt,
    runUrl,
  };
}

/**
 * What people following the run hear of a change: a release made, a release rolled back, an
 * approval that timed out, or, failing those, the run failed. One change makes at most one
 * notice, and each change is recorded once (a conditional write), so each event is told once.
 */
export function noticeBetween(before: Run | undefined, after: Run, runUrl: string): Notice | undefined {
  const base = { runId: after.id, pipeline: after.pipeline, repo: after.repo.fullName, sha: after.sha, ...(after.branch !== undefined ? { branch: after.branch } : {}), runUrl };
  for (const [i, s] of after.stages.entries()) {
    if (s.spec.kind !== "deploy" || before?.stages[i]?.status === s.status) continue;
    const at = { ...base, stageName: s.name, environment: s.spec.environment };
    if (s.status === "succeeded") return { ...at, kind: "released" };
    if (s.status !== "failed") continue;
    if (s.gate?.rule && s.startedAt === undefined && /^approval timed out/.test(s.error ?? "")) return { ...at, kind: "timed-out", error: s.error ?? "" };
    if (/\brolled\b.*\bback\b/i.test(s.error ?? "")) return { ...at, kind: "rolled-back", error: s.error ?? "" };
  }
  if (after.status === "failed" && before?.status !== "failed") return { ...base, kind: "failed", ...(after.error ? { error: after.error } : {}) };
  return undefined;
}

/** Commit statuses and chat, as one observer of runs; each part optional. */
export function peopleObserver(opts: { reporter?: RunReporter; chat?: ChatNotifier; runUrl: (run: Run) => string }): RunObserver {
  const { reporter, chat, runUrl } = opts;
  return {
    changed(before, after) {
      reporter?.report(before, after);
      const notice = chat && noticeBetween(before, after, runUrl(after));
      // fanOut never rejects: a chat outage is logged there.
      if (notice) void chat.notify(notice);
    },
    approvalRequested(run, stage) {
      const req = chat && approvalRequestOf(run, stage, runUrl(run));
      if (req) void chat.approvalRequested(req);
    },
  };
}
