import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LOG_EVERY_MS, logSink } from "../../lib/runs/logs.ts";
import { MemoryRunStore } from "../support/memory.ts";

/** A store that counts log writes and can be made to fail them. */
class CountingStore extends MemoryRunStore {
  puts = 0;
  failing = false;
  override async putLog(...args: Parameters<MemoryRunStore["putLog"]>): Promise<void> {
    this.puts += 1;
    if (this.failing) throw new Error("table unavailable");
    return super.putLog(...args);
  }
}

const text = async (store: MemoryRunStore) => (await store.readLogs("r1", 0)).map((c) => c.text).join("");

describe("a stage's log sink", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it("stores a burst of lines once, within LOG_EVERY_MS, and then once a second at most", async () => {
    const store = new CountingStore();
    const logs = logSink(store, "r1", 0, (s) => s);
    for (let i = 0; i < 20; i++) logs.write(`line ${i}\n`);
    logs.replace("job output\n");
    await vi.advanceTimersByTimeAsync(0);
    expect(store.puts).toBe(1);
    expect(await text(store)).toBe(`job output\n${Array.from({ length: 20 }, (_, i) => `line ${i}\n`).join("")}`);

    for (let i = 0; i < 10; i++) {
      logs.write(`more ${i}\n`);
      await vi.advanceTimersByTimeAsync(LOG_EVERY_MS / 10);
    }
    await vi.advanceTimersByTimeAsync(LOG_EVERY_MS);
    expect(store.puts).toBeLessThanOrEqual(3);
    expect(await text(store)).toContain("more 9\n");
  });

  it("flush stores what is pending at once, and redacts it", async () => {
    const store = new CountingStore();
    const logs = logSink(store, "r1", 0, (s) => s.replaceAll("hunter2", "[redacted]"));
    logs.write("first\n");
    await vi.advanceTimersByTimeAsync(0);
    logs.write("token hunter2\n");
    await logs.flush();
    expect(await text(store)).toBe("first\ntoken [redacted]\n");
    expect(store.puts).toBe(2);
  });

  it("a failed store is retried by the next flush; flush throws only when that fails too", async () => {
    const store = new CountingStore();
    const logs = logSink(store, "r1", 0, (s) => s);
    store.failing = true;
    logs.write("kept\n");
    await vi.advanceTimersByTimeAsync(LOG_EVERY_MS);
    await expect(logs.flush()).rejects.toThrow("table unavailable");
    store.failing = false;
    await logs.flush();
    expect(await text(store)).toBe("kept\n");
  });
});
