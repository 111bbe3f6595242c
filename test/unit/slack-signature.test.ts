import { describe, expect, it } from "vitest";
import { signSlack, verifySlackSignature } from "../../lib/chat/slack-signature.ts";

// Slack's worked example ("Verifying requests from Slack"); the signature was recomputed with
// `printf 'v0:1531420618:<body>' | openssl dgst -sha256 -hmac 8f742231b10e8888abcd99yyyzzz85a5`.
const DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const DOC_TIMESTAMP = "1531420618";
const DOC_BODY =
  "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const DOC_NOW = Number(DOC_TIMESTAMP) * 1000;

const check = (body: string | Uint8Array<ArrayBuffer>, timestamp: string | undefined, signature: string | undefined, now = DOC_NOW, secrets = [DOC_SECRET]) =>
  verifySlackSignature(body, { timestamp, signature }, secrets, now);

describe("Slack request signatures", () => {
  it("matches Slack's documented example, as text or bytes", async () => {
    expect(await signSlack(DOC_BODY, DOC_TIMESTAMP, DOC_SECRET)).toBe(DOC_SIGNATURE);
    expect(await check(DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE)).toEqual({ ok: true });
    expect(await check(new TextEncoder().encode(DOC_BODY), DOC_TIMESTAMP, DOC_SIGNATURE)).toEqual({ ok: true });
  });

  it("accepts any of several secrets, so one can be rotated", async () => {
    expect(await check(DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_NOW, ["", "old-secret-rotating-out", DOC_SECRET])).toEqual({ ok: true });
  });

  it("accepts a timestamp up to five minutes off, either way", async () => {
    expect((await check(DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_NOW + 300_000)).ok).toBe(true);
    expect((await check(DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_NOW - 300_000)).ok).toBe(true);
  });

  it.each([
    ["six minutes old", DOC_NOW + 6 * 60_000],
    ["six minutes in the future", DOC_NOW - 6 * 60_000],
  ])("refuses a timestamp %s, though the signature is right", async (_, now) => {
    const r = await check(DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, now);
    expect(r).toMatchObject({ ok: false, reason: expect.stringMatching(/more than 5 minutes/) });
  });

  it("refuses a wrong secret, a changed body and a changed timestamp", async () => {
    expect(await check(DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_NOW, ["another-secret"])).toMatchObject({ ok: false, reason: expect.stringMatching(/does not match/) });
    expect((await check(DOC_BODY.replace("roadrunner", "wileecoyote"), DOC_TIMESTAMP, DOC_SIGNATURE)).ok).toBe(false);
    expect((await check(`${DOC_BODY}&x=1`, DOC_TIMESTAMP, DOC_SIGNATURE)).ok).toBe(false);
    expect((await check(DOC_BODY, String(Number(DOC_TIMESTAMP) + 1), DOC_SIGNATURE)).ok).toBe(false);
    expect((await check(DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_NOW, [])).ok).toBe(false);
    expect((await check(DOC_BODY, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_NOW, [""])).ok).toBe(false);
  });

  it.each([
    ["no timestamp", undefined, DOC_SIGNATURE, /missing/],
    ["no signature", DOC_TIMESTAMP, undefined, /missing/],
    ["an empty signature", DOC_TIMESTAMP, "", /missing/],
    ["a timestamp that is not a number", "1531420618.5", DOC_SIGNATURE, /not a number/],
    ["a negative timestamp", "-1531420618", DOC_SIGNATURE, /not a number/],
    ["a timestamp in hex", "0x5b47a0ca", DOC_SIGNATURE, /not a number/],
    ["an absurdly long timestamp", "9".repeat(40), DOC_SIGNATURE, /not a number/],
    ["a v1 signature", DOC_TIMESTAMP, DOC_SIGNATURE.replace("v0=", "v1="), /not a v0/],
    ["upper-case hex", DOC_TIMESTAMP, DOC_SIGNATURE.toUpperCase().replace("V0=", "v0="), /not a v0/],
    ["a short signature", DOC_TIMESTAMP, DOC_SIGNATURE.slice(0, -2), /not a v0/],
    ["a signature with a space", DOC_TIMESTAMP, ` ${DOC_SIGNATURE}`, /not a v0/],
    ["a GitHub-style header", DOC_TIMESTAMP, DOC_SIGNATURE.replace("v0=", "sha256="), /not a v0/],
  ])("refuses %s without throwing", async (_, timestamp, signature, reason) => {
    expect(await check(DOC_BODY, timestamp, signature)).toMatchObject({ ok: false, reason: expect.stringMatching(reason) });
  });
});
