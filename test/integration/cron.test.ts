import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { StartedServers } from "../../lib/local/servers.mjs";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import { ConfigCache } from "../../lib/runs/config-cache.ts";
import { fireSchedules, type CronDeps, type FireSummary } from "../../lib/runs/cron.ts";
import { scheduleRunId } from "../../lib/runs/ids.ts";
import { registerSchedules } from "../../lib/runs/register-schedules.ts";
import { LocalGitReader } from "../../lib/scm/local.ts";
import { loopbackDynamoApi } from "../../lib/store/dynamo-loopback.ts";
import { DynamoScheduleStore } from "../../lib/store/dynamo-schedules.ts";
import { scheduleId } from "../../lib/store/schedules.ts";
import type { Services } from "../../lib/services.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";
import { ManualClock, MemoryQueue } from "../support/memory.ts";

/**
 * The scheduler on the real table (dynalite, in this process): the schedule registry, the slot
 * claims and the runs (DynamoRunStore) are the items production writes. The repository is a git
 * repository on disk read by the local reader (its `.hoist.yml` and branch heads); the queue
 * records what is sent.
 */

let servers: StartedServers;
let s: Services;
let dir: string;
let repo: RepoRef;
let clock: ManualClock;
let queue: MemoryQueue;
let schedules: DynamoScheduleStore;
let deps: CronDeps;

beforeAll(async () => {
  try {
    servers = await startAwsServers();
  } catch (err) {
    throw new Error(`dynalite and local-aws-sqs start inside the test process; run \`npm install\` so they are in node_modules: ${(err as Error).message}`);
  }
});
afterAll(async () => {
  await servers?.close();
});

function git(...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=Hoist Test", "-c", "user.email=test@hoist.invalid", "-C", dir, ...args], { encoding: "utf8" }).trim();
}

/** Commits `.hoist.yml` (or an empty commit) on main and returns the new head. */
function commit(hoistYml?: string): string {
  if (hoistYml !== undefined) writeFileSync(join(dir, ".hoist.yml"), hoistYml);
  git("add", "-A");
  git("commit", "--quiet", "--no-gpg-sign", "--allow-empty", "-m", "change");
  return git("rev-parse", "HEAD");
}

const file = (schedule: string) => `pipelines:\n  nightly:\n    on: { push: { branches: [main] }, schedule: ${schedule} }\n    stages: [ { build: {} } ]\n`;

beforeEach(async () => {
  // A table of its own: the scheduler lists every schedule in it.
  s = await servicesOn(servers);
  dir = mkdtempSync(join(tmpdir(), "hoist-cron-"));
  git("init", "--quiet", "--initial-branch=main");
  repo = { provider: "github", fullName: "local/cron", cloneUrl: dir };
  clock = new ManualClock(Date.parse("2024-05-01T02:50:00Z"));
  queue = new MemoryQueue();
  schedules = new DynamoScheduleStore(loopbackDynamoApi(servers.dynamodb), s.config.HOIST_TABLE);
  const source = new LocalGitReader({ allowLocalRepos: true });
  deps = { schedules, store: s.store, queue, clock, configs: new ConfigCache(source), source, log: pino({ level: "silent" }), redriveAfterMs: 30_000 };
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** What a resolved push to main does: registers the schedules of `.hoist.yml` at its head. */
async function pushed(sha: string) {
  const config = await deps.configs.get(repo, sha);
  if (config !== undefined && !config.ok) throw new Error(config.error);
  return registerSchedules(schedules, { repo, branch: "main", sha, receivedAt: clock.now() }, config?.file);
}

async function tick(iso: string): Promise<FireSummary> {
  clock.t = Date.parse(iso);
  return fireSchedules(deps, clock.now());
}

const slotRunId = (cron: string, iso: string) => scheduleRunId("github:local/cron", scheduleId("main", "nightly", { cron }), Date.parse(iso));

describe("fireSchedules on dynalite", () => {
  it("ticks racing on the same minute start one run", async () => {
    await pushed(commit(file(`"* * * * *"`)));
    clock.t = Date.parse("2024-05-01T02:51:05Z");
    const racing = await Promise.all(Array.from({ length: 5 }, () => fireSchedules(deps, clock.now())));
    const id = slotRunId("* * * * *", "2024-05-01T02:51:00Z");
    const started = racing.flatMap((r) => r.started);
    // A tick that lists the schedule after another claimed it takes up the claim: same run.
    expect(started.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(started.map((r) => r.runId))).toEqual(new Set([id]));
    expect(racing.flatMap((r) => r.failed)).toEqual([]);
    expect(queue.sent).toEqual([{ message: { runId: id }, delaySec: 0 }]);
    expect((await s.store.getRun(id))?.run).toMatchObject({ pipeline: "nightly", branch: "main", trigger: { type: "schedule", cron: "* * * * *" } });
    expect((await s.store.listRuns({})).runs).toHaveLength(1);
  });

  it("a late tick, after the scheduler missed ten slots, fires the latest one once", async () => {
    await pushed(commit(file(`"*/5 * * * *"`)));
    expect(await tick("2024-05-01T02:50:30Z")).toMatchObject({ started: [{ slot: Date.parse("2024-05-01T02:50:00Z") }] });
    // Down from 02:51 to 03:46: the slots 02:55 to 03:45 passed unseen.
    const late = await tick("2024-05-01T03:46:00Z");
    expect(late.started.map((r) => new Date(r.slot).toISOString())).toEqual(["2024-05-01T03:45:00.000Z"]);
    expect((await tick("2024-05-01T03:47:00Z")).started).toEqual([]);
    expect(queue.sent.map((m) => m.message)).toEqual([
      { runId: slotRunId("*/5 * * * *", "2024-05-01T02:50:00Z") },
      { runId: slotRunId("*/5 * * * *", "2024-05-01T03:45:00Z") },
    ]);
  });

  it("only_if_new_commits skips a slot with no new commit, and fires once the head moves", async () => {
    const first = commit(file(`{ cron: "0 * * * *", only_if_new_commits: true }`));
    await pushed(first);
    expect((await tick("2024-05-01T03:00:20Z")).started.map((r) => r.sha)).toEqual([first]);
    const idle = await tick("2024-05-01T04:00:20Z");
    expect(idle.started).toEqual([]);
    expect(idle.skipped.map((r) => r.reason)).toEqual([`no new commit on main since the last scheduled run (${first.slice(0, 12)})`]);
    // Skipped once: the slot is dealt with.
    expect(await tick("2024-05-01T04:01:20Z")).toMatchObject({ started: [], skipped: [] });
    const moved = commit();
    expect((await tick("2024-05-01T05:00:20Z")).started.map((r) => r.sha)).toEqual([moved]);
    expect(queue.sent).toHaveLength(2);
  });

  it("a schedule removed from the file stops firing", async () => {
    await pushed(commit(file(`["0 3 * * *", "30 3 * * *"]`)));
    expect((await tick("2024-05-01T03:00:20Z")).started).toHaveLength(1);
    clock.advance(1000);
    expect(await pushed(commit(file(`"30 3 * * *"`)))).toMatchObject({ removed: [scheduleId("main", "nightly", { cron: "0 3 * * *" })] });
    expect((await tick("2024-05-01T03:30:20Z")).started.map((r) => r.runId)).toEqual([slotRunId("30 3 * * *", "2024-05-01T03:30:00Z")]);
    const nextDay = await tick("2024-05-02T03:00:20Z");
    expect(nextDay.started).toEqual([]);
    expect(queue.sent).toHaveLength(2);
    // And removing the file removes the rest.
    clock.advance(1000);
    rmSync(join(dir, ".hoist.yml"));
    expect(await pushed(commit())).toMatchObject({ removed: [scheduleId("main", "nightly", { cron: "30 3 * * *" })] });
    expect((await tick("2024-05-02T03:30:20Z")).started).toEqual([]);
  });

  it("a registration received before the branch's last one changes nothing", async () => {
    await pushed(commit(file(`"0 3 * * *"`)));
    const older = commit(file(`"0 4 * * *"`));
    clock.advance(-60_000);
    expect(await pushed(older)).toBe("stale");
    clock.advance(120_000);
    expect(await pushed(older)).toMatchObject({ added: [scheduleId("main", "nightly", { cron: "0 4 * * *" })] });
    // The same registration again (a redriven delivery) is harmless.
    expect(await pushed(older)).toMatchObject({ added: [], kept: [scheduleId("main", "nightly", { cron: "0 4 * * *" })] });
  });
});
