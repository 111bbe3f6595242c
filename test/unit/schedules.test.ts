import pino from "pino";
import { beforeEach, describe, expect, it } from "vitest";
import { tick as cronTick } from "../../functions/cron.ts";
import { RetryableError } from "../../lib/errors.ts";
import { declaredSchedules } from "../../lib/pipeline/declared-schedules.ts";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import { HoistFile } from "../../lib/pipeline/schema.ts";
import { ConfigCache } from "../../lib/runs/config-cache.ts";
import { fireSchedules, type CronDeps } from "../../lib/runs/cron.ts";
import { scheduleRunId } from "../../lib/runs/ids.ts";
import { registerSchedules } from "../../lib/runs/register-schedules.ts";
import type { ResolvedRef } from "../../lib/scm/port.ts";
import { scheduleId } from "../../lib/store/schedules.ts";
import { FakeSource, ManualClock, MemoryQueue, MemoryRunStore, MemoryScheduleStore } from "../support/memory.ts";

/** The schedule registry and the scheduler's tick, on in-memory ports. */

const repo: RepoRef = { provider: "github", fullName: "acme/shop", cloneUrl: "https://github.com/acme/shop.git" };
const SHA1 = "1".repeat(40);
const SHA2 = "2".repeat(40);
const at = (iso: string) => Date.parse(iso);

const file = (pipelines: Record<string, unknown>) => HoistFile.parse({ pipelines });
const pipeline = (on: Record<string, unknown>) => ({ on, stages: [{ build: {} }] });
const yaml = (on: string) => `pipelines:\n  nightly:\n    on: ${on}\n    stages: [ { build: {} } ]\n`;
const NIGHTLY = yaml(`{ push: { branches: [main] }, schedule: "0 3 * * *" }`);

describe("declaredSchedules: the branch a schedule fires on", () => {
  const schedulesOf = (on: Record<string, unknown>, branch: string) => declaredSchedules(file({ p: pipeline(on) }), branch).map((d) => d.schedule.cron);

  it("is its branch: when it names one, and only that branch's file registers it", () => {
    const on = { push: { branches: ["main"] }, schedule: { cron: "0 3 * * *", branch: "release" } };
    expect(schedulesOf(on, "release")).toEqual(["0 3 * * *"]);
    expect(schedulesOf(on, "main")).toEqual([]);
  });

  it("else the one branch the push trigger names literally", () => {
    expect(schedulesOf({ push: { branches: ["main"] }, schedule: "0 3 * * *" }, "main")).toEqual(["0 3 * * *"]);
    // A feature branch carrying the same file does not fire main's schedule a second time.
    expect(schedulesOf({ push: { branches: ["main"] }, schedule: "0 3 * * *" }, "feature/x")).toEqual([]);
  });

  it.each([
    ["a glob", { push: { branches: ["release/*"] } }],
    ["two branches", { push: { branches: ["main", "dev"] } }],
    ["every branch", { push: true }],
    ["tags only", { push: { tags: ["v*"] } }],
    ["a negation", { push: { branches: ["!main"] } }],
    ["no push trigger", {}],
  ])("else, with %s, the branch whose push registered the file", (_, on) => {
    expect(schedulesOf({ ...on, schedule: "0 3 * * *" }, "dev")).toEqual(["0 3 * * *"]);
  });
});

let clock: ManualClock;
let schedules: MemoryScheduleStore;
let store: MemoryRunStore;
let queue: MemoryQueue;
let source: FakeSource;
let heads: Map<string, string | Error>;
let deps: CronDeps;

beforeEach(() => {
  clock = new ManualClock(at("2024-05-01T02:50:00Z"));
  schedules = new MemoryScheduleStore();
  store = new MemoryRunStore();
  queue = new MemoryQueue();
  source = new FakeSource({ ".hoist.yml": NIGHTLY });
  heads = new Map([[`${repo.fullName}@main`, SHA1]]);
  deps = {
    schedules,
    store,
    queue,
    clock,
    configs: new ConfigCache(source),
    redriveAfterMs: 30_000,
    log: pino({ level: "silent" }),
    source: {
      resolveRef: async (r: RepoRef, ref: string): Promise<ResolvedRef | undefined> => {
        const head = heads.get(`${r.fullName}@${ref}`);
        if (head instanceof Error) throw head;
        return head === undefined ? undefined : { branch: ref, sha: head };
      },
    },
  };
});

let registrations = 0;
/** Registers `text` as the file at `sha` (default: a commit of its own, since files are cached by commit). */
async function register(text: string, opts: { branch?: string; sha?: string; r?: RepoRef } = {}) {
  source.files[".hoist.yml"] = text;
  const sha = opts.sha ?? `${++registrations}`.padStart(40, "f");
  const parsed = await deps.configs.get(opts.r ?? repo, sha);
  if (!parsed?.ok) throw new Error(parsed ? parsed.error : "no file");
  return registerSchedules(schedules, { repo: opts.r ?? repo, branch: opts.branch ?? "main", sha, receivedAt: clock.now() }, parsed.file);
}

async function tick(iso: string) {
  clock.t = at(iso);
  return fireSchedules(deps, clock.now());
}

const sentRuns = () => queue.sent.map((s) => ("runId" in s.message ? s.message.runId : undefined));

describe("registerSchedules", () => {
  it("makes the branch's registry what its file declares: one pattern once, UTC or not", async () => {
    const result = await register(yaml(`{ push: { branches: [main] }, schedule: ["0 3 * * *", { cron: "0 3 * * *", timezone: UTC }, "0 4 * * *"] }`));
    expect(result).toMatchObject({ added: [scheduleId("main", "nightly", { cron: "0 3 * * *" }), scheduleId("main", "nightly", { cron: "0 4 * * *" })] });
    expect(schedules.items.size).toBe(2);
  });

  it("removes what the file no longer declares, and keeps the slots of what it changed", async () => {
    await register(yaml(`{ push: { branches: [main] }, schedule: ["0 3 * * *", "0 4 * * *"] }`));
    await tick("2024-05-01T03:00:30Z");
    clock.advance(1000);
    const result = await register(yaml(`{ push: { branches: [main] }, schedule: { cron: "0 3 * * *", only_if_new_commits: true } }`), { sha: SHA2 });
    const id = scheduleId("main", "nightly", { cron: "0 3 * * *" });
    expect(result).toEqual({ added: [], updated: [id], kept: [], removed: [scheduleId("main", "nightly", { cron: "0 4 * * *" })] });
    expect(schedules.get(id)?.record).toMatchObject({ sha: SHA2, lastSlot: at("2024-05-01T03:00:00Z"), lastSha: SHA1, schedule: { only_if_new_commits: true } });
  });

  it("ignores a registration received before the last one (a delivery retried late)", async () => {
    clock.t = at("2024-05-01T02:00:00Z");
    await register(yaml(`{ push: { branches: [main] }, schedule: "0 4 * * *" }`));
    clock.t = at("2024-05-01T01:59:00Z");
    expect(await register(NIGHTLY)).toBe("stale");
    expect([...schedules.items.values()].map((s) => s.record.schedule.cron)).toEqual(["0 4 * * *"]);
  });

  it("with no file (deleted, or the branch is gone) removes the branch's schedules, not another branch's", async () => {
    await register(NIGHTLY);
    await register(yaml(`{ schedule: "0 5 * * *" }`), { branch: "dev" });
    await registerSchedules(schedules, { repo, branch: "main", sha: "0".repeat(40), receivedAt: clock.now() }, undefined);
    expect([...schedules.items.values()].map((s) => `${s.record.branch} ${s.record.schedule.cron}`)).toEqual(["dev 0 5 * * *"]);
  });
});

describe("fireSchedules", () => {
  it("fires a slot once: one run at the branch head, one message, with an id derived from the slot", async () => {
    await register(NIGHTLY);
    expect(await tick("2024-05-01T02:59:00Z")).toMatchObject({ started: [], waiting: 1 });
    const first = await tick("2024-05-01T03:00:20Z");
    const id = scheduleRunId("github:acme/shop", scheduleId("main", "nightly", { cron: "0 3 * * *" }), at("2024-05-01T03:00:00Z"));
    expect(first.started).toEqual([{ schedule: 'acme/shop@main nightly "0 3 * * *"', slot: at("2024-05-01T03:00:00Z"), runId: id, sha: SHA1, created: true }]);
    expect((await store.getRun(id))?.run).toMatchObject({ sha: SHA1, branch: "main", ref: "refs/heads/main", pipeline: "nightly", trigger: { type: "schedule", cron: "0 3 * * *", slot: at("2024-05-01T03:00:00Z") } });
    expect(await tick("2024-05-01T03:00:50Z")).toMatchObject({ started: [], waiting: 0 });
    expect(sentRuns()).toEqual([id]);
    // Due again at the next slot, not before.
    expect(schedules.get(scheduleId("main", "nightly", { cron: "0 3 * * *" }))?.dueAt).toBe(at("2024-05-02T03:00:00Z"));
  });

  it("two ticks racing on the same minute start one run", async () => {
    await register(yaml(`{ push: { branches: [main] }, schedule: "* * * * *" }`));
    const [a, b] = await Promise.all([tick("2024-05-01T02:51:05Z"), fireSchedules(deps, at("2024-05-01T02:51:05Z"))]);
    expect([...a.started, ...b.started].filter((r) => r.created)).toHaveLength(1);
    expect(queue.sent).toHaveLength(1);
    expect(store.runs.size).toBe(1);
  });

  it("a tick after ten missed slots fires the latest one, once", async () => {
    await register(yaml(`{ push: { branches: [main] }, schedule: "*/5 * * * *" }`));
    await tick("2024-05-01T02:50:10Z");
    const late = await tick("2024-05-01T03:41:00Z");
    expect(late.started.map((s) => new Date(s.slot).toISOString())).toEqual(["2024-05-01T03:40:00.000Z"]);
    expect((await tick("2024-05-01T03:42:00Z")).started).toEqual([]);
    expect(queue.sent).toHaveLength(2);
  });

  it("only_if_new_commits skips a slot with no new commit, once, and fires when the head moves", async () => {
    await register(yaml(`{ push: { branches: [main] }, schedule: { cron: "0 * * * *", only_if_new_commits: true } }`));
    expect((await tick("2024-05-01T03:00:10Z")).started).toHaveLength(1);
    const same = await tick("2024-05-01T04:00:10Z");
    expect(same.skipped).toEqual([{ schedule: expect.any(String), slot: at("2024-05-01T04:00:00Z"), reason: `no new commit on main since the last scheduled run (${SHA1.slice(0, 12)})` }]);
    expect((await tick("2024-05-01T04:01:10Z")).skipped).toEqual([]);
    heads.set(`${repo.fullName}@main`, SHA2);
    const moved = await tick("2024-05-01T05:00:10Z");
    expect(moved.started.map((s) => s.sha)).toEqual([SHA2]);
    expect(queue.sent).toHaveLength(2);
  });

  it("a start that fails keeps the claim: the next tick starts the same slot under the same id", async () => {
    await register(NIGHTLY);
    await tick("2024-05-01T02:59:00Z");
    heads.set(`${repo.fullName}@main`, new RetryableError("GitHub is down"));
    const failed = await tick("2024-05-01T03:00:10Z");
    expect(failed.failed).toEqual([{ schedule: expect.any(String), error: "GitHub is down" }]);
    const claim = schedules.get(scheduleId("main", "nightly", { cron: "0 3 * * *" }))?.record.claim;
    expect(claim).toMatchObject({ slot: at("2024-05-01T03:00:00Z") });
    heads.set(`${repo.fullName}@main`, SHA1);
    const retried = await tick("2024-05-01T03:01:10Z");
    expect(retried.started.map((s) => s.runId)).toEqual([claim!.runId]);
    expect(schedules.get(scheduleId("main", "nightly", { cron: "0 3 * * *" }))?.record.claim).toBeUndefined();
  });

  it("a run made before its message failed is found by the next tick, not made again", async () => {
    await register(NIGHTLY);
    await tick("2024-05-01T02:59:00Z");
    const send = queue.send.bind(queue);
    queue.send = async () => {
      throw new Error("socket hang up");
    };
    expect((await tick("2024-05-01T03:00:10Z")).failed).toHaveLength(1);
    expect(store.runs.size).toBe(1);
    queue.send = send;
    const next = await tick("2024-05-01T03:01:10Z");
    expect(next.started.map((s) => s.runId)).toEqual([...store.runs.keys()]);
    expect(store.runs.size).toBe(1);
  });

  it("a slot the head's file refuses, or a branch that is gone, is skipped with the reason", async () => {
    await register(NIGHTLY);
    await tick("2024-05-01T02:59:00Z");
    // The head no longer has the schedule, and its push has not been registered yet.
    source.files[".hoist.yml"] = yaml(`{ push: { branches: [main] } }`);
    heads.set(`${repo.fullName}@main`, SHA2);
    const refused = await tick("2024-05-01T03:00:10Z");
    expect(refused.skipped.map((s) => s.reason)).toEqual(['pipeline "nightly" has no schedule "0 3 * * *" any more']);
    heads.delete(`${repo.fullName}@main`);
    const gone = await tick("2024-05-02T03:00:10Z");
    expect(gone.skipped.map((s) => s.reason)).toEqual(["branch main of acme/shop does not exist"]);
    expect(queue.sent).toEqual([]);
  });

  it("a provider outage for one repository does not stop the others", async () => {
    const down: RepoRef = { provider: "github", fullName: "acme/down", cloneUrl: "https://github.com/acme/down.git" };
    await register(NIGHTLY);
    await register(NIGHTLY, { r: down });
    heads.set(`${down.fullName}@main`, new RetryableError("GitHub did not answer within 60 s"));
    await tick("2024-05-01T02:59:00Z");
    const summary = await tick("2024-05-01T03:00:10Z");
    expect(summary.started.map((s) => s.schedule)).toEqual(['acme/shop@main nightly "0 3 * * *"']);
    expect(summary.failed).toEqual([{ schedule: 'acme/down@main nightly "0 3 * * *"', error: "GitHub did not answer within 60 s" }]);
  });

  it("looks at a bounded number of schedules a tick; the rest stay due for the next", async () => {
    await register(yaml(`{ push: { branches: [main] }, schedule: ["0 3 * * *", "0 3 * * 1-5", "0 3 1-31 * *"] }`));
    clock.t = at("2024-05-01T03:00:10Z");
    const first = await fireSchedules(deps, clock.now(), 2);
    const second = await fireSchedules(deps, clock.now(), 2);
    expect([first.started.length, second.started.length]).toEqual([2, 1]);
  });

  it("a schedule removed from the file stops firing", async () => {
    await register(NIGHTLY);
    expect((await tick("2024-05-01T03:00:10Z")).started).toHaveLength(1);
    clock.advance(1000);
    await register(yaml(`{ push: { branches: [main] } }`), { sha: SHA2 });
    expect(await tick("2024-05-02T03:00:10Z")).toEqual({ started: [], skipped: [], failed: [], waiting: 0, raced: 0 });
  });
});

describe("functions/cron.ts tick", () => {
  it("runs one tick at the clock's time, whatever the event", async () => {
    await register(NIGHTLY);
    clock.t = at("2024-05-01T03:00:10Z");
    const event = { version: "0", id: "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event", source: "aws.events", time: "2024-05-01T03:00:00Z", detail: {} };
    expect((await cronTick(deps, event)).started).toHaveLength(1);
    expect((await cronTick(deps, undefined)).started).toHaveLength(0);
  });
});
