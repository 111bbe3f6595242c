import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";

describe("the process logger", () => {
  it("redacts a known secret wherever it hides in a line: message, error, nested field, header", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const secret = "gh-secret-0123456789";
    const log = createLogger("info", [secret], sink);
    log.info(`signed with ${secret}`);
    log.warn({ err: new Error(`remote said: bad token ${secret}`) }, "request failed");
    log.error({ request: { url: `https://x/?t=${secret}`, headers: { "x-other": "a" } } }, "nested");
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).not.toContain(secret);
    expect(lines.join("")).toContain("[redacted]");
    expect(JSON.parse(lines[1]!)).toMatchObject({ err: { message: "remote said: bad token [redacted]" } });
  });
});

describe("webhook secrets", () => {
  it("are refused under 16 characters, naming the setting and how to make one", () => {
    expect(() => loadConfig({ GITHUB_WEBHOOK_SECRET: "ok-secret-of-sixteen,short" })).toThrow(
      /GITHUB_WEBHOOK_SECRET: each secret must be at least 16 characters \(e\.g\. `openssl rand -hex 20`\)/,
    );
    expect(loadConfig({ GITLAB_WEBHOOK_TOKEN: "a-token-of-16-ch" }).GITLAB_WEBHOOK_TOKEN).toEqual(["a-token-of-16-ch"]);
  });
});
