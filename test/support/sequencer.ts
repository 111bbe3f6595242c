import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The end-to-end files that take longest, in this order. With two files at a time, the run
 * ends soonest when they start first; vitest's own order (longest first, by the last run's
 * times) has no times on a fresh clone, and falls back to the files' sizes, which puts the
 * release scenarios (small files calling one shared suite) last.
 */
const LONGEST = ["test/e2e/release-on-swarm.test.ts", "test/e2e/release.test.ts", "test/e2e/app.test.ts", "test/e2e/cli.test.ts"];

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const projects = [...new Set(sorted.map((f) => f.project.name))];
    const rank = (f: TestSpecification) => {
      const i = LONGEST.findIndex((path) => f.moduleId.endsWith(path));
      return i < 0 ? LONGEST.length : i;
    };
    // Projects stay in vitest's order; within one, the longest known first, the rest as vitest had them.
    return sorted
      .map((f, i) => ({ f, key: [projects.indexOf(f.project.name), rank(f), i] }))
      .sort((a, b) => a.key[0]! - b.key[0]! || a.key[1]! - b.key[1]! || a.key[2]! - b.key[2]!)
      .map(({ f }) => f);
  }
}
