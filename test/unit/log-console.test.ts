import { afterEach, describe, expect, it, vi } from "vitest";

// The Lambda bundles and the edge Worker log through pino's browser build (lib/bundles/bundle.ts
// aliases it): the same logger, writing to the console instead of a stream.
vi.mock("pino", async () => {
  const browserBuild = "pino/browser.js"; // untyped: the package types its Node build only
  return { default: ((await import(browserBuild)) as { default: unknown }).default };
});
const { createLogger } = await import("../../lib/log.ts");

afterEach(() => {
  vi.restoreAllMocks();
});

describe("the process logger as the Lambda bundles and the Worker run it (pino's browser build)", () => {
  it("writes JSON lines to the console, redacting a known secret wherever it hides, headers by path", () => {
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
