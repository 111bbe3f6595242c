import type { Reporter, SerializedError, TestModule } from "vitest/node";

/**
 * Ends the run with a plain `tests: N passed, N failed` line that any CI log reader
 * understands. A file whose hooks fail, or an error thrown outside any test, fails the run
 * without failing a test, so those are counted on the same line rather than hidden by it.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of modules)
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
    const files = modules.filter((mod) => mod.errors().length > 0).length;
    const parts = [`${passed} passed`, `${failed} failed`];
    if (skipped) parts.push(`${skipped} skipped`);
    if (files) parts.push(`${files} file(s) failed outside a test`);
    if (unhandledErrors.length) parts.push(`${unhandledErrors.length} unhandled error(s)`);
    process.stdout.write(`\ntests: ${parts.join(", ")}\n`);
  }
}
