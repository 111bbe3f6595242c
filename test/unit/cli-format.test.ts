import { describe, expect, it } from "vitest";
import {
  excerpt,
  formatAge,
  formatDuration,
  formatElapsed,
  formatStatus,
  LineBuffer,
  logDelta,
  newestFirst,
  paint,
  pullReference,
  refLabel,
  releasesTable,
  runDetail,
  runDuration,
  runError,
  runsTable,
  stageDuration,
  stageHeader,
  stripAnsi,
  table,
  visibleWidth,
  withoutTag,
} from "../../lib/cli/format.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import type { ReleaseRecord } from "../../lib/release/records.ts";
import { makeRun } from "../support/runs.ts";

const NOW = 1_700_000_000_000;

/** A finished run whose three stages succeeded and pushed an image. */
function succeeded(overrides: Partial<Run> = {}): Run {
  const base = makeRun();
  const t = NOW - 60_000;
  return {
    ...base,
    status: "succeeded",
    createdAt: t,
    updatedAt: t + 5_000,
    startedAt: t + 500,
    finishedAt: t + 4_700,
    image: `shop:${base.sha}`,
    digest: `sha256:${"ab".repeat(32)}`,
    stages: base.stages.map((s, i) => ({
      ...s,
      status: "succeeded" as const,
      startedAt: t + 500 + i * 1000,
      finishedAt: t + 1_400 + i * 1000,
      ok: true,
      ...(s.spec.kind === "push" ? { output: { image: `127.0.0.1:5000/shop:${base.sha}`, digest: `sha256:${"ab".repeat(32)}` } } : {}),
    })),
    ...overrides,
  };
}

describe("formatDuration", () => {
  it("is compact at every scale", () => {
    expect(formatDuration(0)).toBe("0ms");
    expect(formatDuration(850)).toBe("850ms");
    expect(formatDuration(999.6)).toBe("1000ms");
    expect(formatDuration(1_000)).toBe("1.0s");
    expect(formatDuration(3_249)).toBe("3.2s");
    expect(formatDuration(9_999)).toBe("9.9s");
    expect(formatDuration(42_000)).toBe("42s");
    expect(formatDuration(65_000)).toBe("1m05s");
    expect(formatDuration(3_600_000 + 3 * 60_000)).toBe("1h03m");
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000)).toBe("3d04h");
  });

  it("treats negative and non-finite values as zero", () => {
    expect(formatDuration(-5)).toBe("0ms");
    expect(formatDuration(Number.NaN)).toBe("0ms");
  });
});

describe("formatAge and formatElapsed", () => {
  it("says how long ago, coarsely", () => {
    expect(formatAge(NOW, NOW)).toBe("just now");
    expect(formatAge(NOW - 12_000, NOW)).toBe("12s ago");
    expect(formatAge(NOW - 5 * 60_000, NOW)).toBe("5m ago");
    expect(formatAge(NOW - 3 * 3_600_000, NOW)).toBe("3h ago");
    expect(formatAge(NOW - 3 * 86_400_000, NOW)).toBe("3d ago");
    expect(formatAge(NOW + 5_000, NOW)).toBe("just now"); // clock skew
  });

  it("keeps a fixed-width gutter", () => {
    expect(formatElapsed(0)).toBe("[  0.0s]");
    expect(formatElapsed(3_249)).toBe("[  3.2s]");
    expect(formatElapsed(123_400)).toBe("[123.4s]");
  });
});

describe("run and stage durations", () => {
  it("measures from start to finish, or to now while running", () => {
    const run = succeeded();
    expect(runDuration(run, NOW)).toBe(4_200);
    expect(runDuration({ ...run, status: "running", finishedAt: undefined }, NOW)).toBe(NOW - run.startedAt!);
    expect(runDuration({ ...run, status: "queued", startedAt: undefined, finishedAt: undefined }, NOW)).toBeUndefined();
    // Failed before any stage started (bad config): from creation to the end.
    expect(runDuration({ ...run, status: "failed", startedAt: undefined }, NOW)).toBe(4_700);
    expect(stageDuration(run.stages[0]!, NOW)).toBe(900);
    expect(stageDuration({ startedAt: NOW - 2_000 }, NOW)).toBe(2_000);
    expect(stageDuration({}, NOW)).toBeUndefined();
  });
});

describe("text helpers", () => {
  it("excerpts the first non-empty line", () => {
    expect(excerpt(undefined)).toBe("");
    expect(excerpt("\n  boom  \nmore")).toBe("boom");
    expect(excerpt("x".repeat(100), 10)).toBe("xxxxxxxxx…");
    expect(excerpt("short", 10)).toBe("short");
  });

  it("labels the ref by branch, tag or raw ref", () => {
    expect(refLabel({ ref: "refs/heads/main", branch: "main" })).toBe("main");
    expect(refLabel({ ref: "refs/tags/v1", tag: "v1" })).toBe("tag:v1");
    expect(refLabel({ ref: "refs/pull/1/head" })).toBe("refs/pull/1/head");
  });

  it("finds why a run failed", () => {
    const run = succeeded();
    expect(runError(run)).toBeUndefined();
    expect(runError({ ...run, error: "top" })).toBe("top");
    expect(runError({ ...run, stopped: { at: 1, status: "failed", reason: "bad yml" } })).toBe("bad yml");
    expect(runError({ ...run, stages: run.stages.map((s, i) => (i === 1 ? { ...s, error: "exited with 1" } : s)) })).toBe("exited with 1");
  });

  it("strips image tags, not registry ports", () => {
    expect(withoutTag("127.0.0.1:5000/shop:abc")).toBe("127.0.0.1:5000/shop");
    expect(withoutTag("127.0.0.1:5000/shop")).toBe("127.0.0.1:5000/shop");
    expect(withoutTag("shop:abc")).toBe("shop");
    expect(withoutTag("reg.io/a/b:1@sha256:00")).toBe("reg.io/a/b");
  });

  it("gives the pull reference by digest of the pushed image", () => {
    expect(pullReference(succeeded())).toBe(`127.0.0.1:5000/shop@sha256:${"ab".repeat(32)}`);
    expect(pullReference(makeRun())).toBeUndefined();
  });
});

describe("ANSI", () => {
  it("paints only when enabled, and widths ignore the codes", () => {
    expect(paint("red", "x", false)).toBe("x");
    const red = paint("red", "failed", true);
    expect(red).toBe("\x1b[31mfailed\x1b[39m");
    expect(stripAnsi(red)).toBe("failed");
    expect(visibleWidth(red)).toBe(6);
    expect(visibleWidth("✓ ok")).toBe(4);
    expect(formatStatus("succeeded", false)).toBe("succeeded");
    expect(formatStatus("succeeded", true)).toContain("\x1b[32m");
  });
});

describe("table", () => {
  it("aligns columns, right-aligns where asked, leaves no trailing blanks", () => {
    const out = table(
      ["A", "BB", "C"],
      [
        ["1", "x", ""],
        ["22", "yyy", "z"],
      ],
      { alignRight: [0] },
    );
    expect(out.split("\n")).toEqual([" A  BB   C", " 1  x", "22  yyy  z"]);
  });

  it("lines up coloured cells as plain ones", () => {
    const plain = table(["S", "N"], [["ok", "1"], ["failed", "2"]]);
    const coloured = table(["S", "N"], [[paint("green", "ok", true), "1"], [paint("red", "failed", true), "2"]]);
    expect(stripAnsi(coloured)).toBe(plain);
  });
});

describe("runsTable", () => {
  it("lists newest first with ref, status, age, duration and error", () => {
    const older = succeeded({ id: "r-old", createdAt: NOW - 3_600_000, startedAt: NOW - 3_599_000, finishedAt: NOW - 3_590_000 });
    const failed = succeeded({
      id: "r-new",
      status: "failed",
      branch: undefined,
      tag: "v1.2.0",
      ref: "refs/tags/v1.2.0",
      createdAt: NOW - 30_000,
      startedAt: NOW - 29_000,
      finishedAt: NOW - 20_000,
      error: "test: `npm test` exited with 1\nand more",
    });
    const out = runsTable([older, failed], { now: NOW, color: false });
    const lines = out.split("\n");
    expect(lines[0]).toMatch(/^ID\s+REPO\s+BRANCH\/TAG\s+PIPELINE\s+STATUS\s+AGE\s+DURATION\s+ERROR$/);
    expect(lines[1]).toMatch(/^r-new\s+acme\/shop\s+tag:v1\.2\.0\s+main\s+failed\s+30s ago\s+9\.0s\s+test: `npm test` exited with 1$/);
    expect(lines[2]).toMatch(/^r-old\s+acme\/shop\s+main\s+main\s+succeeded\s+1h ago\s+9\.0s$/);
    expect(out).not.toContain("\x1b[");
  });

  it("says so when there is nothing", () => {
    expect(runsTable([], { now: NOW, color: false })).toBe("no runs");
  });

  it("keeps the order of runs created at the same time", () => {
    const a = succeeded({ id: "a" });
    const b = succeeded({ id: "b" });
    expect(newestFirst([a, b]).map((r) => r.id)).toEqual(["a", "b"]);
  });

  it("shows a dash for a run that has not started", () => {
    const queued = { ...makeRun(), createdAt: NOW - 2_000 };
    expect(runsTable([queued], { now: NOW, color: false }).split("\n")[1]).toMatch(/queued\s+2s ago\s+-$/);
  });
});

describe("runDetail and stageHeader", () => {
  it("shows the run's facts and one row per stage", () => {
    const out = runDetail(succeeded(), { now: NOW, color: false });
    expect(out).toContain("run       r1");
    expect(out).toContain("repo      acme/shop (github)");
    expect(out).toContain("ref       main @ 0123456789ab");
    expect(out).toContain("status    ✓ succeeded");
    expect(out).toContain("duration  4.2s");
    expect(out).toContain(`pull      docker pull 127.0.0.1:5000/shop@sha256:${"ab".repeat(32)}`);
    expect(out).toMatch(/^#\s+STAGE\s+KIND\s+STATUS\s+DURATION\s+ERROR$/m);
    expect(out).toMatch(/^0\s+build-0\s+build\s+✓ succeeded\s+900ms$/m);
    expect(out).toMatch(/^2\s+push-2\s+push\s+✓ succeeded\s+900ms$/m);
  });

  it("shows each service's image of a compose build, by digest once pushed", () => {
    const base = succeeded();
    const digest = `sha256:${"cd".repeat(32)}`;
    const run: Run = {
      ...base,
      stages: base.stages.map((s) =>
        s.spec.kind === "build"
          ? { ...s, output: { image: "shop-web:abc", images: { web: "shop-web:abc", worker: "shop-worker:abc" } } }
          : s.spec.kind === "push"
            ? { ...s, output: { ...s.output, images: { web: `127.0.0.1:5000/shop-web@${digest}`, worker: `127.0.0.1:5000/shop-worker@${digest}` } } }
            : s,
      ),
    };
    const out = runDetail(run, { now: NOW, color: false });
    expect(out).toMatch(new RegExp(`^image \\(web\\)\\s+127\\.0\\.0\\.1:5000/shop-web@${digest}$`, "m"));
    expect(out).toMatch(new RegExp(`^image \\(worker\\)\\s+127\\.0\\.0\\.1:5000/shop-worker@${digest}$`, "m"));
    const unpushed = { ...run, stages: run.stages.filter((s) => s.spec.kind !== "push") };
    expect(runDetail(unpushed, { now: NOW, color: false })).toMatch(/^image \(worker\)\s+shop-worker:abc$/m);
  });

  it("shows a stage's error and a running run's time so far", () => {
    const base = succeeded();
    const run: Run = {
      ...base,
      status: "running",
      finishedAt: undefined,
      stages: base.stages.map((s, i) =>
        i === 1 ? { ...s, status: "failed", error: "`npm test` exited with 2" } : i === 2 ? { ...s, status: "pending", startedAt: undefined, finishedAt: undefined } : s,
      ),
    };
    const out = runDetail(run, { now: NOW, color: false });
    expect(out).toMatch(/^duration  59s so far$/m);
    expect(out).toMatch(/^1\s+test-1\s+test\s+✗ failed\s+900ms\s+`npm test` exited with 2$/m);
    expect(out).toMatch(/^2\s+push-2\s+push\s+· pending\s+-$/m);
    expect(out).toContain("error     `npm test` exited with 2");
  });

  it("heads a stage's log with its index, name, status and duration", () => {
    expect(stageHeader(0, { name: "build", status: "succeeded", startedAt: 0, finishedAt: 1_500 }, { now: NOW, color: false })).toBe(
      "=== 0 build (succeeded, 1.5s) ===",
    );
    expect(stageHeader(2, { name: "push", status: "pending" }, { now: NOW, color: false })).toBe("=== 2 push (pending) ===");
  });
});

describe("following logs", () => {
  it("prints only what was appended", () => {
    expect(logDelta("", "a\nb")).toBe("a\nb");
    expect(logDelta("a\nb", "a\nb\nc\n")).toBe("\nc\n");
    expect(logDelta("same", "same")).toBe("");
  });

  it("reprints from the start of a rewritten line", () => {
    // The worker's own note followed the job's output, then the job said more.
    expect(logDelta("job 1\nnote\n", "job 1\njob 2\nnote\n")).toBe("job 2\nnote\n");
    expect(logDelta("abc", "xyz")).toBe("xyz");
  });

  it("holds back partial lines until they are complete", () => {
    const b = new LineBuffer();
    expect(b.push("Step 1\nSte")).toEqual(["Step 1"]);
    expect(b.push("p 2\r\n")).toEqual(["Step 2"]);
    expect(b.push("tail")).toEqual([]);
    expect(b.flush()).toEqual(["tail"]);
    expect(b.flush()).toEqual([]);
  });

  it("keeps the last state of a line redrawn with carriage returns", () => {
    const b = new LineBuffer();
    expect(b.push("10%\r50%\r100%\ndone\n")).toEqual(["100%", "done"]);
  });
});

describe("releasesTable", () => {
  const now = Date.parse("2026-11-22T12:00:00Z");
  const base: ReleaseRecord = {
    env: "production",
    id: "01rel",
    image: "shop:v2",
    service: "web",
    strategy: "canary",
    trigger: { type: "manual", by: "ana" },
    status: "running",
    startedAt: now - 90_000,
    instances: [],
    spec: {},
  };

  it("says what a parked release waits for and when it is looked at next; errors for failed ones", () => {
    const parked = { ...base, checkpoint: { until: now + 30_000, waiting: "canary at 10%", canary: { step: 10, before: [] } } };
    const failed = { ...base, id: "01old", status: "failed" as const, finishedAt: now - 100_000, startedAt: now - 160_000, error: "canary failed at 10%: 7 of 21 responses were 5xx", rolledBack: true };
    const digest = `sha256:${"ab".repeat(32)}`;
    const done = { ...base, id: "01new", image: `reg.example/shop@${digest}`, status: "succeeded" as const, finishedAt: now, digest };
    const lines = releasesTable([parked, failed, done], { now, color: false }).split("\n");
    expect(lines[0]).toMatch(/^RELEASE +IMAGE +RUNNING +STRATEGY +STATUS +TRIGGER +AGE +DURATION +NOTE$/);
    expect(lines[1]).toMatch(/01rel +shop:v2 +- +canary +running +manual by ana .*waiting: canary at 10%, next look in 30s$/);
    expect(lines[2]).toMatch(/01old .*failed \(rolled back\) .*canary failed at 10%: 7 of 21 responses were 5xx$/);
    // What runs, as the engine reported it: the digest's first 12 hex digits.
    expect(lines[3]).toMatch(/01new +reg\.example\/shop@sha256:abab\S* +sha256:abababababab +canary +succeeded/);
  });
});
