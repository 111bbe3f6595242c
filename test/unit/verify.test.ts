import { createRequire } from "node:module";
import type { WebhookDefinition } from "@octokit/webhooks-examples";
import { describe, expect, it } from "vitest";
import { signGitHub, verifyGitHubSignature, verifyGitLabToken } from "../../lib/scm/verify.ts";

// The package's main is a JSON file whose typings declare an ES default export that
// NodeNext cannot see through, so it is loaded as the CommonJS JSON it is.
const examples = createRequire(import.meta.url)("@octokit/webhooks-examples") as WebhookDefinition[];

// GitHub's documented test vector ("Validating webhook deliveries").
const DOC_SECRET = "It's a Secret to Everybody";
const DOC_BODY = "Hello, World!";
const DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

const pushBody = JSON.stringify(examples.find((d) => d.name === "push")?.examples[0]);
const SECRET = "s3cr3t-for-tests";

describe("verifyGitHubSignature", () => {
  it("matches GitHub's documented signature", async () => {
    expect(await signGitHub(DOC_BODY, DOC_SECRET)).toBe(DOC_SIGNATURE);
    expect(await verifyGitHubSignature(DOC_BODY, DOC_SIGNATURE, [DOC_SECRET])).toBe(true);
    expect(await verifyGitHubSignature(new TextEncoder().encode(DOC_BODY), DOC_SIGNATURE, [DOC_SECRET])).toBe(true);
  });

  it("verifies a signed push delivery, as string or bytes", async () => {
    const header = await signGitHub(pushBody, SECRET);
    expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(await verifyGitHubSignature(pushBody, header, [SECRET])).toBe(true);
    expect(await verifyGitHubSignature(Buffer.from(pushBody), header, [SECRET])).toBe(true);
    expect(await verifyGitHubSignature(pushBody, header.toUpperCase().replace("SHA256=", "sha256="), [SECRET])).toBe(true);
  });

  it("rejects a wrong secret, a tampered body and no secrets", async () => {
    const header = await signGitHub(pushBody, SECRET);
    expect(await verifyGitHubSignature(pushBody, header, ["other-secret"])).toBe(false);
    expect(await verifyGitHubSignature(pushBody.replace("Codertocat", "Codertocar"), header, [SECRET])).toBe(false);
    expect(await verifyGitHubSignature(pushBody + " ", header, [SECRET])).toBe(false);
    expect(await verifyGitHubSignature(pushBody, header, [])).toBe(false);
    expect(await verifyGitHubSignature(pushBody, await signGitHub(pushBody, "x"), [""])).toBe(false);
  });

  it("rejects missing and malformed headers without throwing", async () => {
    const good = await signGitHub(pushBody, SECRET);
    const hex = good.slice("sha256=".length);
    for (const header of [
      undefined,
      null,
      "",
      "sha256=",
      `sha1=${hex.slice(0, 40)}`,
      `sha1=${hex}`,
      hex,
      `sha256=${hex.slice(0, 62)}`,
      `sha256=${hex}00`,
      `sha256=${hex.slice(0, 63)}`,
      `sha256=${hex.slice(0, 62)}zz`,
      `sha256=${"g".repeat(64)}`,
      ` ${good}`,
    ]) {
      await expect(verifyGitHubSignature(pushBody, header, [SECRET]), String(header)).resolves.toBe(false);
    }
  });

  it("accepts any of several secrets, so a secret can be rotated", async () => {
    const signedWithNew = await signGitHub(pushBody, "new-secret");
    const signedWithOld = await signGitHub(pushBody, "old-secret");
    expect(await verifyGitHubSignature(pushBody, signedWithNew, ["old-secret", "new-secret"])).toBe(true);
    expect(await verifyGitHubSignature(pushBody, signedWithOld, ["old-secret", "new-secret"])).toBe(true);
    expect(await verifyGitHubSignature(pushBody, signedWithOld, ["new-secret"])).toBe(false);
  });
});

describe("verifyGitLabToken", () => {
  it("accepts the configured token and any of several", async () => {
    expect(await verifyGitLabToken("token-1", ["token-1"])).toBe(true);
    expect(await verifyGitLabToken("token-2", ["token-1", "token-2"])).toBe(true);
  });

  it("rejects a wrong, missing, empty or different-length token", async () => {
    expect(await verifyGitLabToken("token-x", ["token-1"])).toBe(false);
    expect(await verifyGitLabToken(undefined, ["token-1"])).toBe(false);
    expect(await verifyGitLabToken(null, ["token-1"])).toBe(false);
    expect(await verifyGitLabToken("", ["token-1", ""])).toBe(false);
    expect(await verifyGitLabToken("token-1-and-more", ["token-1"])).toBe(false);
    expect(await verifyGitLabToken("token", ["token-1"])).toBe(false);
    expect(await verifyGitLabToken("token-1", [])).toBe(false);
  });
});
