import { describe, expect, it } from "vitest";
import { PermanentError, RetryableError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/log.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import type { Report, ReportSender } from "../../lib/scm/report-changes.ts";
import { QueuedReporter, type ReporterOptions } from "../../lib/scm/report.ts";
import { deployRun, finished, GITLAB_REPO, started, steps, successfulLife } from "../support/report-runs.ts";

/** A sender that records what it was asked, and answers as `answer` says (default: lands). */
function fakeSender(answer: (report: Report, tries: number) => Promise<void> | void = () => undefined): ReportSender & { sent: Report[]; landed: Report[] } {
  const sent: Report[] = [];
  const landed: Report[] = [];
  return {
    sent,
    landed,
    async send(report) {
      sent.push(report);
      await answer(report, sent.filter((r) => r === report).length);
      landed.push(report);
    },
  };
}

function reporter(sender: ReportSender, more: Partial<ReporterOptions> = {}): { reporter: QueuedReporter; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const log = createLogger("debug", [], { write: (line: string) => void out.push(line) });
  const r = new QueuedReporter({ senders: { github: sender }, runUrl: (run) => `https://hoist.example.com/runs/${run.id}`, log, retry: { attempts: 3, baseMs: 5, maxWaitMs: 200 }, ...more });
  return { reporter: r, lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const brief = (r: Report) => `${r.context} ${r.kind === "status" ? r.status : r.state}`;

describe("QueuedReporter", () => {
  it("returns at once, before anything is sent, and flush waits for the reports", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sender = fakeSender(() => gate);
    const { reporter: r } = reporter(sender);
    const [first] = successfulLife();
    r.report(undefined, first!);
    expect(sender.sent).toHaveLength(0);
    let flushed = false;
    const flushing = r.flush().then(() => (flushed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sender.sent).toHaveLength(4);
    expect(flushed).toBe(false);
    release();
    await flushing;
    expect(sender.landed.map(brief)).toEqual(["hoist/main/build pending", "hoist/main/test pending", "hoist/main/push pending", "hoist/main/deploy pending"]);
  });

  it("never throws: not when the run's link cannot be made, nor when a sender throws at once", async () => {
    const { reporter: broken, lines } = reporter(fakeSender(), {
      runUrl: () => {
        throw new Error("no public URL");
      },
    });
    expect(() => broken.report(undefined, deployRun())).not.toThrow();
    await broken.flush();
    expect(lines()).toContainEqual(expect.objectContaining({ msg: "could not report the run's progress", error: "no public URL" }));

    const throwing: ReportSender = {
      send: () => {
        throw new TypeError("boom");
      },
    };
    const { reporter: r, lines: more } = reporter(throwing);
    expect(() => r.report(undefined, deployRun())).not.toThrow();
    await r.flush();
    expect(more().filter((l) => l.msg === "report refused; not tried again")).toHaveLength(4);
  });

  it("does nothing for a provider it has no sender for, nor for a local repository", async () => {
    const sender = fakeSender();
    const { reporter: r } = reporter(sender);
    r.report(undefined, deployRun(GITLAB_REPO));
    r.report(undefined, { ...deployRun(), repo: { provider: "github", fullName: "demo/app", cloneUrl: "file:///tmp/hoist-demo" } });
    await r.flush();
    expect(sender.sent).toEqual([]);
  });

  it("retries a retryable failure with backoff until it lands; a permanent one is tried once", async () => {
    const sender = fakeSender((report, tries) => {
      if (report.context === "hoist/main/build" && tries < 3) throw new RetryableError("GitHub answered 500");
      if (report.context === "hoist/main/test") throw new PermanentError("GitHub refused (HTTP 403)");
    });
    const { reporter: r, lines } = reporter(sender);
    r.report(undefined, deployRun());
    await r.flush();
    expect(sender.sent.filter((s) => s.context === "hoist/main/build")).toHaveLength(3);
    expect(sender.landed.map(brief)).toContain("hoist/main/build pending");
    expect(sender.sent.filter((s) => s.context === "hoist/main/test")).toHaveLength(1);
    expect(lines()).toContainEqual(expect.objectContaining({ msg: "report refused; not tried again", context: "hoist/main/test", error: "GitHub refused (HTTP 403)" }));
  });

  it("gives up after its attempts, and says so", async () => {
    const sender = fakeSender(() => {
      throw new RetryableError("GitHub answered 502");
    });
    const { reporter: r, lines } = reporter(sender);
    r.report(undefined, deployRun());
    await r.flush();
    expect(sender.sent).toHaveLength(4 * 3);
    expect(lines().filter((l) => l.msg === "report given up after 3 tries")).toHaveLength(4);
  });

  it("waits as long as the provider asks, and drops a report whose wait is longer than it waits", async () => {
    const times: number[] = [];
    const sender = fakeSender((report, tries) => {
      if (report.context !== "hoist/main/build") return;
      times.push(performance.now());
      if (tries === 1) throw new RetryableError("rate limit", { retryAfterMs: 150 });
    });
    const { reporter: r } = reporter(sender);
    r.report(undefined, deployRun());
    await r.flush();
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(140);

    const limited = fakeSender(() => {
      throw new RetryableError("rate limit", { retryAfterMs: 3_600_000 });
    });
    const { reporter: r2, lines } = reporter(limited);
    r2.report(undefined, deployRun());
    await r2.flush();
    expect(limited.sent).toHaveLength(4);
    expect(lines().filter((l) => l.msg === "report dropped: the provider asks to wait longer than the reporter waits")).toHaveLength(4);
  });

  it("keeps each status in order: a newer report replaces an older one being retried, which is not sent again", async () => {
    const runs = steps(deployRun(), [started(0, 1), finished(0, 2)]);
    // The build's "running" fails (an outage) until a newer report for the build comes.
    const sender = fakeSender((report) => {
      if (report.context === "hoist/main/build" && report.kind === "status" && report.status === "running") throw new RetryableError("GitHub answered 503");
    });
    const { reporter: r } = reporter(sender, { retry: { attempts: 5, baseMs: 100, maxWaitMs: 1000 } });
    r.report(runs[0], runs[1]!);
    await new Promise((resolve) => setTimeout(resolve, 20));
    r.report(runs[1], runs[2]!);
    await r.flush();
    const build = sender.sent.filter((s) => s.context === "hoist/main/build").map(brief);
    expect(build).toEqual(["hoist/main/build running", "hoist/main/build succeeded"]);
    expect(sender.landed.map(brief)).toEqual(["hoist/main/build succeeded"]);
  });

  it("sends only the latest of reports not yet sent for one status", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sender = fakeSender((report) => (report.context === "hoist/main/build" && report.kind === "status" && report.status === "pending" ? gate : undefined));
    const { reporter: r } = reporter(sender);
    const runs = steps(deployRun(), [started(0, 1), finished(0, 2)]);
    r.report(undefined, runs[0]!);
    await new Promise((resolve) => setTimeout(resolve, 20));
    r.report(runs[0], runs[1]!); // waits behind the pending one being sent...
    r.report(runs[1], runs[2]!); // ...and is replaced by this one
    release();
    await r.flush();
    expect(sender.sent.filter((s) => s.context === "hoist/main/build").map(brief)).toEqual(["hoist/main/build pending", "hoist/main/build succeeded"]);
  });

  it("holds a bounded number of reports: past it the oldest waiting one is dropped, with a log line", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sender = fakeSender(() => gate);
    const { reporter: r, lines } = reporter(sender, { concurrency: 1, maxPending: 3 });
    const runs: Run[] = ["r1", "r2"].map((id) => ({ ...deployRun(), id }));
    for (const run of runs) r.report(undefined, run); // 8 reports, 3 held
    release();
    await r.flush();
    expect(sender.sent.map((s) => `${s.runId} ${s.context}`)).toEqual(["r2 hoist/main/test", "r2 hoist/main/push", "r2 hoist/main/deploy"]);
    expect(lines().filter((l) => l.msg === "too many reports to send: the oldest waiting one is dropped")).toHaveLength(5);
  });
});
