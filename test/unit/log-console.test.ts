import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { bundleForLambda } from "../../lib/bundles/bundle.ts";
import type * as Log from "../../lib/log.ts";

const dirs: string[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** lib/log.ts as a Lambda bundle carries it: bundled as the functions are, pino's browser build in. */
async function bundledLog(): Promise<typeof Log> {
  const dir = await mkdtemp(join(tmpdir(), "hoist-log-bundle-"));
  dirs.push(dir);
  const entry = join(dir, "entry.ts");
  await writeFile(entry, `export { createLogger } from ${JSON.stringify(join(import.meta.dirname, "../../lib/log.ts"))};\n`);
  const file = join(dir, "out", "index.mjs");
  const { inputs } = await bundleForLambda(entry, file);
  expect(inputs).toContain("node_modules/pino/browser.js");
  return (await import(pathToFileURL(file).href)) as typeof Log;
}

describe("the process logger in a Lambda bundle (pino's browser build, as on the edge Worker)", () => {
  it("writes JSON lines to the console, redacting a known secret wherever it hides, headers by path", async () => {
    const { createLogger } = await bundledLog();
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    const secret = "gh-secret-0123456789";
    const log = createLogger("info", [secret]);
    log.debug(`below the level: ${secret}`);
    log.info(`signed with ${secret}`);
    log.warn({ err: new Error(`remote said: bad token ${secret}`) }, "request failed");
    log.error({ request: { url: `https://x/?t=${secret}` }, headers: { "x-other": "a" } }, "nested");
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).not.toContain(secret);
    const [info, warn, error] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(info).toMatchObject({ level: 30, msg: "signed with [redacted]" });
    expect(warn).toMatchObject({ level: 40, msg: "request failed" });
    expect(JSON.stringify(warn)).toContain("remote said: bad token [redacted]");
    expect(error).toMatchObject({ level: 50, headers: { "x-other": "[redacted]" }, request: { url: "https://x/?t=[redacted]" } });
  });
});
