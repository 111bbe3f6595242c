import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cronProblem } from "../../lib/pipeline/cron.ts";
import { dueSlot, FIRST_SLOT_WINDOW_MS, latestSlot, nextSlot } from "../../lib/pipeline/schedule-slots.ts";
import { Schedule } from "../../lib/pipeline/schema.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe("dueSlot", () => {
  const nightly = { cron: "0 3 * * *" };

  it("is the slot at or before now that is after the last one", () => {
    const lastSlot = at("2024-01-01T03:00:00Z");
    expect(iso(dueSlot(nightly, { lastSlot, now: at("2024-01-02T03:00:40Z") }))).toBe("2024-01-02T03:00:00.000Z");
    expect(iso(dueSlot(nightly, { lastSlot, now: at("2024-01-02T03:00:00Z") }))).toBe("2024-01-02T03:00:00.000Z");
    expect(dueSlot(nightly, { lastSlot, now: at("2024-01-02T02:59:59.999Z") })).toBeUndefined();
  });

  it("is nothing once the slot is fed back, until the next one", () => {
    const slot = at("2024-01-02T03:00:00Z");
    expect(dueSlot(nightly, { lastSlot: slot, now: at("2024-01-02T03:01:00Z") })).toBeUndefined();
    expect(dueSlot(nightly, { lastSlot: slot, now: at("2024-01-03T02:59:00Z") })).toBeUndefined();
    expect(iso(dueSlot(nightly, { lastSlot: slot, now: at("2024-01-03T03:00:05Z") }))).toBe("2024-01-03T03:00:00.000Z");
  });

  it("collapses slots missed while the scheduler was down into the latest one", () => {
    const every5 = { cron: "*/5 * * * *" };
    // Down from 10:00 to 10:52: ten slots passed, one is due.
    expect(iso(dueSlot(every5, { lastSlot: at("2024-05-01T10:00:00Z"), now: at("2024-05-01T10:52:00Z") }))).toBe("2024-05-01T10:50:00.000Z");
  });

  it("counts, for a schedule seen for the first time, only a slot within the last tick", () => {
    expect(FIRST_SLOT_WINDOW_MS).toBe(120_000);
    expect(iso(dueSlot(nightly, { now: at("2024-01-02T03:01:30Z") }))).toBe("2024-01-02T03:00:00.000Z");
    expect(dueSlot(nightly, { now: at("2024-01-02T03:02:30Z") })).toBeUndefined();
    expect(dueSlot(nightly, { now: at("2024-01-02T12:00:00Z") })).toBeUndefined();
  });

  it("reads the pattern in the schedule's time zone, UTC when it names none", () => {
    const tokyo = { cron: "0 9 * * *", timezone: "Asia/Tokyo" };
    expect(iso(latestSlot(tokyo, at("2024-01-02T00:30:00Z")))).toBe("2024-01-02T00:00:00.000Z");
    expect(iso(latestSlot({ cron: "0 9 * * *" }, at("2024-01-02T09:30:00Z")))).toBe("2024-01-02T09:00:00.000Z");
    expect(latestSlot({ cron: "0 9 * * *", timezone: "UTC" }, at("2024-01-02T09:30:00Z"))).toBe(latestSlot({ cron: "0 9 * * *" }, at("2024-01-02T09:30:00Z")));
  });

  describe("across daylight-saving changes (Europe/Berlin, 2024)", () => {
    const berlin = (cron: string) => ({ cron, timezone: "Europe/Berlin" });

    it("fires a fixed time in the spring gap once, at the end of the gap", () => {
      // 31 March: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
      const daily = berlin("30 2 * * *");
      const before = at("2024-03-30T01:30:00Z"); // 02:30 CET
      expect(iso(dueSlot(daily, { lastSlot: before, now: at("2024-03-31T01:05:00Z") }))).toBe("2024-03-31T01:00:00.000Z"); // 03:00 CEST
      expect(dueSlot(daily, { lastSlot: at("2024-03-31T01:00:00Z"), now: at("2024-03-31T12:00:00Z") })).toBeUndefined();
      expect(iso(nextSlot(daily, at("2024-03-31T01:00:00Z")))).toBe("2024-04-01T00:30:00.000Z"); // 02:30 CEST
    });

    it("fires a fixed time in the autumn overlap once", () => {
      // 27 October: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
      const daily = berlin("30 2 * * *");
      const first = dueSlot(daily, { lastSlot: at("2024-10-26T00:30:00Z"), now: at("2024-10-27T00:45:00Z") });
      expect(iso(first)).toBe("2024-10-27T00:30:00.000Z"); // 02:30 CEST
      expect(dueSlot(daily, { lastSlot: first!, now: at("2024-10-27T01:45:00Z") })).toBeUndefined(); // 02:45 CET
    });

    it("fires an interval pattern at both occurrences of the repeated hour", () => {
      const halfHourly = berlin("*/30 * * * *");
      const cest = dueSlot(halfHourly, { lastSlot: at("2024-10-27T00:00:00Z"), now: at("2024-10-27T00:31:00Z") });
      expect(iso(cest)).toBe("2024-10-27T00:30:00.000Z"); // 02:30 CEST
      const cet = dueSlot(halfHourly, { lastSlot: cest!, now: at("2024-10-27T01:01:00Z") });
      expect(iso(cet)).toBe("2024-10-27T01:00:00.000Z"); // 02:00 CET, an hour of wall time later, 30 minutes of real time
    });
  });

  it("reads nicknames: @daily is midnight", () => {
    expect(iso(dueSlot({ cron: "@daily" }, { now: at("2024-01-02T00:01:00Z") }))).toBe("2024-01-02T00:00:00.000Z");
    expect(iso(nextSlot({ cron: "@daily" }, at("2024-01-02T00:00:00Z")))).toBe("2024-01-03T00:00:00.000Z");
  });

  it("takes a 6-field pattern whose seconds field is one number: the slot is at that second", () => {
    const s = { cron: "30 0 3 * * *" };
    const lastSlot = at("2024-01-01T03:00:30Z");
    expect(dueSlot(s, { lastSlot, now: at("2024-01-02T03:00:29Z") })).toBeUndefined();
    expect(iso(dueSlot(s, { lastSlot, now: at("2024-01-02T03:00:30Z") }))).toBe("2024-01-02T03:00:30.000Z");
  });

  it("is nothing, ever, for a pattern that never fires", () => {
    expect(dueSlot({ cron: "0 0 30 2 *" }, { now: at("2024-03-01T00:00:00Z") })).toBeUndefined();
    expect(nextSlot({ cron: "0 0 30 2 *" }, at("2024-03-01T00:00:00Z"))).toBeUndefined();
  });
});

describe("patterns a schedule refuses", () => {
  it.each([
    ["*/10 * * * * *", /fires more than once a minute/],
    ["* * * * * *", /fires more than once a minute/],
    ["0,30 0 3 * * *", /fires more than once a minute/],
    ["0 0 3 * * * 2030", /is not a cron pattern/],
    ["0 3 * *", /is not a cron pattern/],
  ])("%s", (cron, message) => {
    expect(cronProblem(cron, undefined)?.message).toMatch(message);
    const parsed = Schedule.safeParse({ cron });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(["cron"]);
  });

  it("and a time zone that is not one", () => {
    expect(cronProblem("0 3 * * *", "Mars/Olympus")).toMatchObject({ field: "timezone" });
  });

  it.each(["0 3 * * *", "0 */5 * * * *", "@daily", "@hourly", "0 9 * * MON-FRI"])("accepts %s", (cron) => {
    expect(cronProblem(cron, "Europe/Paris")).toBeUndefined();
  });
});

describe("dueSlot properties", () => {
  const pattern = fc.record({
    cron: fc.constantFrom("0 3 * * *", "*/5 * * * *", "*/30 * * * *", "30 2 * * *", "0 0 1 * *", "15 */2 * * 1-5", "@daily", "@hourly", "45 30 1 * * *"),
    timezone: fc.constantFrom(undefined, "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"),
  });
  // 2023 to 2026: several daylight-saving changes in each zone.
  const instant = fc.integer({ min: Date.parse("2023-01-01T00:00:00Z"), max: Date.parse("2026-12-31T00:00:00Z") });

  it("never gives a slot after now, nor one at or before the last, and gives a real fire time", () => {
    fc.assert(
      fc.property(pattern, instant, fc.option(fc.integer({ min: 0, max: 40 * 86_400_000 }), { nil: undefined }), (schedule, now, back) => {
        const lastSlot = back === undefined ? undefined : now - back;
        const slot = dueSlot(schedule, { lastSlot, now });
        if (slot === undefined) return;
        expect(slot).toBeLessThanOrEqual(now);
        expect(slot).toBeGreaterThan(lastSlot ?? now - FIRST_SLOT_WINDOW_MS);
        expect(nextSlot(schedule, slot - 1)).toBe(slot);
        // The latest: the slot after it is still to come.
        expect(nextSlot(schedule, slot)!).toBeGreaterThan(now);
      }),
      { numRuns: 300 },
    );
  });

  it("never gives the same slot twice when each is fed back, however the ticks fall", () => {
    fc.assert(
      fc.property(pattern, instant, fc.array(fc.integer({ min: 1_000, max: 3 * 3_600_000 }), { minLength: 1, maxLength: 40 }), (schedule, start, steps) => {
        let now = start;
        let lastSlot: number | undefined;
        const fired: number[] = [];
        for (const step of steps) {
          now += step;
          const slot = dueSlot(schedule, { lastSlot, now });
          if (slot === undefined) continue;
          fired.push(slot);
          lastSlot = slot;
        }
        expect(new Set(fired).size).toBe(fired.length);
        expect([...fired].sort((a, b) => a - b)).toEqual(fired);
      }),
      { numRuns: 200 },
    );
  });
});
