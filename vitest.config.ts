import { defineConfig } from "vitest/config";

/**
 * Three projects, run one after the other (sequence.groupOrder): unit tests use fakes and
 * run in parallel with vitest's default deadlines; integration and end-to-end tests drive
 * real servers and a real Docker engine on a shared 2-core machine, so they run one file at
 * a time, wait on conditions, and get generous deadlines. The reporters are the run's, so
 * the summary line closes the whole run once.
 */
const slow = { testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false } as const;

export default defineConfig({
  test: {
    pool: "forks",
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: "integration", include: ["test/integration/**/*.test.ts"], ...slow, sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], ...slow, sequence: { groupOrder: 2 } } },
    ],
  },
});
