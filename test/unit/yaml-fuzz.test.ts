import { monitorEventLoopDelay } from "node:perf_hooks";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseHoistFile } from "../../lib/pipeline/config.ts";
import { readReleaseSpec } from "../../lib/compose/app.ts";
import { readBuilds } from "../../lib/compose/builds.ts";
import { untrustedYaml } from "../support/yaml-inputs.ts";

// Generated pipeline and compose files, read as a pipeline, an app and a compose build (deep nesting, many keys, aliases, huge scalars, wrong
// types, random bytes, mutations of valid files) through the real parsers: the worker, the
// bounds, zod. None may throw or crash the process, every refusal names its file, and the
// main thread's event loop is never blocked for a second.

describe("fuzzing the pipeline and compose parsers", () => {
  it("4,000 generated files: no throw, no crash, a message naming the file for each refusal, no stalled event loop", async () => {
    const delay = monitorEventLoopDelay({ resolution: 20 });
    delay.enable();
    const start = performance.now();
    let refused = 0;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(untrustedYaml, async (text) => {
        const [hoist, compose, builds] = await Promise.all([parseHoistFile(text), readReleaseSpec(text, "web"), readBuilds(text, { file: "compose.yaml", prefix: "app", variables: {} })]);
        for (const [file, r] of [[".hoist.yml", hoist], ["docker-compose.yml", compose], ["compose.yaml", builds]] as const) {
          if (r.ok) {
            accepted++;
            continue;
          }
          refused++;
          expect(typeof r.error).toBe("string");
          expect(r.error.startsWith(file)).toBe(true);
          expect(r.error.length).toBeGreaterThan(file.length + 2);
          // A message fits in a run record.
          expect(r.error.length).toBeLessThan(4_000);
        }
      }),
      { numRuns: 4_000 },
    );
    delay.disable();
    const seconds = (performance.now() - start) / 1000;
    console.log(`fuzz: 4000 files (${accepted} reads accepted, ${refused} refused) in ${seconds.toFixed(1)} s; longest event-loop block ${(delay.max / 1e6).toFixed(0)} ms`);
    expect(accepted).toBeGreaterThan(0);
    expect(delay.max / 1e6).toBeLessThan(1_000);
  }, 900_000);
});
