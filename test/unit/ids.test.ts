import { describe, expect, it } from "vitest";
import { deliveryId, deliveryRunId, manualRunId, scheduleRunId } from "../../lib/runs/ids.ts";

// The ids are keys in tables that outlive a release of Hoist: a delivery redelivered after an
// upgrade must map to the id it had before (these were made with node:crypto's SHA-256, which
// the ids used until they had to run on Workers too).
describe("run and delivery ids", () => {
  it("are the ids earlier versions made for the same inputs", () => {
    expect(deliveryId("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958")).toBe("d8q3y9m83q2f9km9p4wyscdg6");
    expect(deliveryRunId("gitlab", "a3c2f0b1-1d2e-4f5a-9b8c-7d6e5f4a3b2c", "deploy")).toBe("r22xdh10krd3q4rvkgs3xj1pp");
    expect(manualRunId("github:acme/shop", "main", "key-ü-1")).toBe("rmfyvjzy8gkw6rfdnee6m9j3r");
    expect(scheduleRunId("github:acme/shop", "main/nightly/0 3 * * *", 29345678)).toBe("r659ap8h0bg6a20vedjvj466h");
  });
});
