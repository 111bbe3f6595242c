import { defineConfig } from "vitest/config";

/**
 * Three projects, run one after the other (sequence.groupOrder). Unit tests use fakes and
 * run in parallel with vitest's default deadlines, sharing their workers' module cache
 * (isolate: false: none mocks a module or keeps state in one, and loading zod, hono and the
 * SDKs once per worker rather than once per file halves the project's time). Integration
 * and end-to-end tests drive real servers and a real Docker engine on a shared 2-core
 * machine: two files at a time, waiting on conditions, with generous deadlines. Reporters
 * belong to the whole run, so the summary line closes it once.
 */
const slow = { testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false } as const;

export default defineConfig({
  test: {
    pool: "forks",
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], isolate: false, sequence: { groupOrder: 0 } } },
      // Two files at a time: most of their time is spent waiting (a provider's deadline, dynalite's
      // answers, an engine's), and none of them measures traffic the way the e2e load tests do.
      { extends: true, test: { name: "integration", include: ["test/integration/**/*.test.ts"], ...slow, fileParallelism: true, maxWorkers: 2, sequence: { groupOrder: 1 } } },
      // Two files at a time as well: each has its own environments, router, runtime and ports, and
      // most of a release's time is spent waiting on an engine or a health check. The load tests
      // count failed requests, not latency, so a busier machine slows them without changing them.
      { extends: true, test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], ...slow, fileParallelism: true, maxWorkers: 2, sequence: { groupOrder: 2 } } },
    ],
  },
});
