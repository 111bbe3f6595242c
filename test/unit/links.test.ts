import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { toBase64Url, utf8 } from "../../lib/chat/hmac.ts";
import { linkUrl, MAX_TOKEN_CHARS, newNonce, signLink, verifyLink, type LinkClaims } from "../../lib/chat/links.ts";
import { RUN_ID } from "../support/chat.ts";

const SECRET = "link-secret-for-tests-0123456789abcdef";
const NOW = Date.UTC(2030, 0, 1);
const claims = (over: Partial<LinkClaims> = {}): LinkClaims => ({ run: RUN_ID, stage: 3, decision: "approve", approver: "alice", exp: NOW + 3_600_000, nonce: "n0nce-0123456789abcdef", ...over });

describe("approval links", () => {
  it("verifies a link it signed and gives back the claims", async () => {
    const token = await signLink(claims(), SECRET);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(await verifyLink(token, SECRET, NOW)).toEqual({ ok: true, claims: claims() });
  });

  it("uses the documented format: base64url(JSON) '.' base64url(HMAC-SHA256(secret, first part))", async () => {
    // Recomputed with node:crypto, independently of lib/chat/hmac.ts.
    const payload = Buffer.from(JSON.stringify(claims())).toString("base64url");
    const mac = createHmac("sha256", SECRET).update(payload).digest("base64url");
    expect(await signLink(claims(), SECRET)).toBe(`${payload}.${mac}`);
  });

  it("refuses a link past its expiry, at the millisecond", async () => {
    const token = await signLink(claims(), SECRET);
    expect((await verifyLink(token, SECRET, NOW + 3_600_000 - 1)).ok).toBe(true);
    expect(await verifyLink(token, SECRET, NOW + 3_600_000)).toMatchObject({ ok: false, reason: "expired", message: expect.stringContaining("2030-01-01T01:00:00.000Z") });
  });

  it("refuses a link signed with another secret", async () => {
    const token = await signLink(claims(), "another-secret-of-another-server-0123");
    expect(await verifyLink(token, SECRET, NOW)).toMatchObject({ ok: false, reason: "forged" });
    expect(await verifyLink(await signLink(claims(), SECRET), "", NOW)).toMatchObject({ ok: false, reason: "forged" });
  });

  it("refuses tampered claims: another run, stage, decision, approver or expiry under the old MAC", async () => {
    const [, mac] = (await signLink(claims(), SECRET)).split(".");
    for (const change of [{ run: "r000000000000000000000000" }, { stage: 4 }, { decision: "reject" as const }, { approver: "mallory" }, { exp: NOW + 365 * 86_400_000 }]) {
      const forged = `${toBase64Url(utf8(JSON.stringify(claims(change))))}.${mac}`;
      expect(await verifyLink(forged, SECRET, NOW), JSON.stringify(change)).toMatchObject({ ok: false, reason: "forged" });
    }
  });

  it("refuses a flipped MAC character and a MAC moved to another link", async () => {
    const token = await signLink(claims(), SECRET);
    const flipped = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
    expect(await verifyLink(flipped, SECRET, NOW)).toMatchObject({ ok: false, reason: "forged" });
    const other = await signLink(claims({ decision: "reject" }), SECRET);
    expect(await verifyLink(`${other.split(".")[0]}.${token.split(".")[1]}`, SECRET, NOW)).toMatchObject({ ok: false, reason: "forged" });
  });

  it.each([
    ["an empty token", ""],
    ["no MAC", "eyJydW4iOiJ4In0"],
    ["three parts", "a.b.c"],
    ["a MAC that is not base64url", "eyJydW4iOiJ4In0.***"],
    ["an oversized token", `${"A".repeat(MAX_TOKEN_CHARS)}.${"B".repeat(43)}`],
    ["a megabyte", "A".repeat(1_000_000)],
  ])("refuses %s as malformed, without throwing", async (_, token) => {
    expect(await verifyLink(token, SECRET, NOW)).toMatchObject({ ok: false, reason: "malformed" });
  });

  it("refuses a correctly signed payload that is not our claims", async () => {
    for (const body of ["not json", JSON.stringify({ ...claims(), admin: true }), JSON.stringify({ ...claims(), stage: 50 }), "\xff\xfe"]) {
      const payload = Buffer.from(body, "latin1").toString("base64url");
      const token = `${payload}.${createHmac("sha256", SECRET).update(payload).digest("base64url")}`;
      expect(await verifyLink(token, SECRET, NOW), body).toMatchObject({ ok: false, reason: "malformed" });
    }
  });

  it("refuses to sign claims it would not accept, or without a secret", async () => {
    await expect(signLink(claims({ stage: -1 }), SECRET)).rejects.toThrow();
    await expect(signLink(claims({ approver: "" }), SECRET)).rejects.toThrow();
    await expect(signLink(claims(), "")).rejects.toThrow(/HOIST_LINK_SECRET/);
  });

  it("makes fresh nonces and the link's URL", () => {
    const nonces = new Set(Array.from({ length: 100 }, newNonce));
    expect(nonces.size).toBe(100);
    for (const n of nonces) expect(n).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(linkUrl("https://hoist.example.com/", "abc.def")).toBe("https://hoist.example.com/chat/approve/abc.def");
    expect(linkUrl("https://hoist.example.com/base", "abc.def")).toBe("https://hoist.example.com/base/chat/approve/abc.def");
  });
});
