import { defineConfig } from "vitest/config";
import { LongestFirst } from "./test/support/sequencer.ts";

/**
 * Three projects, run one after the other (sequence.groupOrder). Unit tests use fakes and
 * run in parallel with vitest's default deadlines, sharing their workers' module cache
 * (isolate: false: none mocks a module or keeps state in one, and loading zod, hono and the
 * SDKs once per worker rather than once per file halves the project's time). Integration
 * and end-to-end tests drive real servers and a real Docker engine on a shared 2-core
 * machine, waiting on conditions with generous deadlines, two files at a time: each file has
 * its own table, queue, environments, routers and ports, and most of its time is spent
 * waiting (on a provider's deadline, an engine, a health check). The load tests count failed
 * requests, not latency, so a busier machine slows them without changing what they show.
 * Reporters belong to the whole run, so the summary line closes it once.
 */
// The longest e2e test (an app on Swarm put back, then rolled back) takes ~75 s beside another
// file here: the deadline leaves room for a machine half as fast again.
const slow = { testTimeout: 240_000, hookTimeout: 240_000, fileParallelism: true, maxWorkers: 2 } as const;

export default defineConfig({
  test: {
    pool: "forks",
    sequence: { sequencer: LongestFirst },
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], isolate: false, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: "integration", include: ["test/integration/**/*.test.ts"], ...slow, sequence: { groupOrder: 1 } } },
      // One file per kind of release host (release.test.ts, release-on-swarm.test.ts): the longest
      // files, started first (see LongestFirst), side by side.
      { extends: true, test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], ...slow, sequence: { groupOrder: 2 } } },
    ],
  },
});
