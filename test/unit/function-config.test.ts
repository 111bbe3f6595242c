import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { loadFunctionConfig } from "../../lib/aws/secrets.ts";
import { ConfigError } from "../../lib/config.ts";
import { useAwsJsonApi } from "../support/aws-json-api.ts";
import { checkSigV4 } from "../support/sigv4.ts";

/**
 * loadFunctionConfig through the real AWS SDK against a local server standing in for Secrets
 * Manager: it answers with the API reference's GetSecretValue response (events/aws/), its
 * SecretString replaced by the settings a test needs, or with an error, or not at all.
 */
const RECORDED = JSON.parse(readFileSync(new URL("../../events/aws/secretsmanager-get-secret-value.json", import.meta.url), "utf8")) as Record<string, unknown>;
const ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:HoistSecrets-a1b2c3";
const KEYS = { AWS_ACCESS_KEY_ID: "AKIDHOISTTEST0000000", AWS_SECRET_ACCESS_KEY: "hoist-test-secret-access-key-0000000000", AWS_SESSION_TOKEN: "hoist-test-session-token" };

// The function's role's keys, where Lambda puts them and the SDK's chain finds them.
beforeEach(() => {
  for (const [name, value] of Object.entries(KEYS)) vi.stubEnv(name, value);
});
afterEach(() => void vi.unstubAllEnvs());

const aws = useAwsJsonApi(() => ({ status: 200, body: JSON.stringify(RECORDED) }));
const asked = aws.asked;

/** The secret holds `settings` (as JSON text, the way the stack's secret does). */
const holding = (settings: unknown) => {
  aws.answer({ status: 200, body: JSON.stringify({ ...RECORDED, ARN, Name: "HoistSecrets", SecretString: typeof settings === "string" ? settings : JSON.stringify(settings) }) });
};

/** A function's environment on AWS, as the stack sets it and Lambda adds to it. */
const lambdaEnv = (extra: Record<string, string> = {}) => ({ ...KEYS, AWS_REGION: "eu-west-1", AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.endpoint, HOIST_SECRETS_ARN: ARN, HOIST_TABLE: "Hoist-Table", ...extra });

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a refusal");
}

describe("loadFunctionConfig: a function's settings from its environment and the stack's secret", () => {
  it("reads the secret once with GetSecretValue, signed with the function's keys, and merges its settings; an empty value is unset", async () => {
    holding({ GITHUB_WEBHOOK_SECRET: "whsec-from-the-secret", HOIST_API_TOKEN: "api-token-from-the-secret", SLACK_BOT_TOKEN: "" });

    const config = await loadFunctionConfig(lambdaEnv());

    expect(config.GITHUB_WEBHOOK_SECRET).toEqual(["whsec-from-the-secret"]);
    expect(config.HOIST_API_TOKEN).toBe("api-token-from-the-secret");
    expect(config.SLACK_BOT_TOKEN).toBeUndefined();
    expect(config.HOIST_TABLE).toBe("Hoist-Table");
    expect(asked).toHaveLength(1);
    const req = asked[0]!;
    expect(req.method).toBe("POST");
    expect(req.headers["x-amz-target"]).toBe("secretsmanager.GetSecretValue");
    expect(req.headers["content-type"]).toBe("application/x-amz-json-1.1");
    expect(req.headers["x-amz-security-token"]).toBe(KEYS.AWS_SESSION_TOKEN);
    expect(JSON.parse(req.body.toString("utf8"))).toEqual({ SecretId: ARN });
    const signature = checkSigV4(req, req.body, KEYS.AWS_SECRET_ACCESS_KEY);
    expect(signature.accessKeyId).toBe(KEYS.AWS_ACCESS_KEY_ID);
    expect(signature.scope).toMatch(/^\d{8}\/eu-west-1\/secretsmanager\/aws4_request$/);
    expect(signature.valid).toBe(true);
  });

  it("without HOIST_SECRETS_ARN (local, or settings only in the environment), asks nothing", async () => {
    const config = await loadFunctionConfig({ GITHUB_WEBHOOK_SECRET: "whsec-from-the-environment", AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.endpoint });
    expect(config.GITHUB_WEBHOOK_SECRET).toEqual(["whsec-from-the-environment"]);
    expect(asked).toHaveLength(0);
  });

  it.each<[string, unknown, Record<string, string>, RegExp]>([
    ["another secret's settings (the API reference's database login)", undefined, {}, /holds username, password, which Hoist does not read: remove or rename them/],
    ["a misspelt setting", { GITHUB_WEBHOK_SECRET: "x" }, {}, /holds GITHUB_WEBHOK_SECRET, which Hoist does not read/],
    ["a setting also in the function's environment", { GITHUB_TOKEN: "ghp_secret" }, { GITHUB_TOKEN: "ghp_env" }, /GITHUB_TOKEN set both in the secret .* and in the function's environment: keep each in one place/],
    ["text that is not JSON", "GITHUB_TOKEN=ghp_x", {}, /is not JSON: it holds settings as \{"GITHUB_WEBHOOK_SECRET"/],
    ["JSON that is not an object of strings", { HOIST_LEASE_MS: 30000 }, {}, /holds HOIST_LEASE_MS, which is not a string: every value is JSON text/],
    ["a value the setting's schema refuses", { HOIST_LEASE_MS: "soon" }, {}, /HOIST_LEASE_MS/],
  ])("refuses %s, saying what to do, without echoing a value", async (_, settings, env, why) => {
    if (settings !== undefined) holding(settings);
    const error = await refusal(loadFunctionConfig(lambdaEnv(env)));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(why);
    for (const value of ["ghp_secret", "EXAMPLE-PASSWORD", "GITHUB_TOKEN=ghp_x"]) expect(error.message).not.toContain(value);
  });

  it("AccessDenied: fails the cold start naming the secret and what the function needs", async () => {
    const message = "User: arn:aws:sts::123456789012:assumed-role/Hoist-Webhook/Hoist-Webhook is not authorized to perform: secretsmanager:GetSecretValue on resource: HoistSecrets";
    aws.answer({ status: 400, headers: { "x-amzn-errortype": "AccessDeniedException" }, body: JSON.stringify({ __type: "AccessDeniedException", Message: message }) });
    const error = await refusal(loadFunctionConfig(lambdaEnv()));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(`could not read the secret ${ARN} (HOIST_SECRETS_ARN)`);
    expect(error.message).toContain("check that it exists and that this function may read it");
    expect(error.message).not.toContain(KEYS.AWS_SECRET_ACCESS_KEY);
  });

  it("a Secrets Manager that does not answer fails the cold start at the deadline instead of hanging it", async () => {
    aws.answer("hang");
    const started = Date.now();
    const error = await refusal(loadFunctionConfig(lambdaEnv(), 500));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("could not read the secret");
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
