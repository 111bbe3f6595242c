import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Clock } from "../../lib/clock.ts";
import { classify, PermanentError, RetryableError } from "../../lib/errors.ts";
import { ECR_REFRESH_BEFORE_MS, ecrCredentials, type EcrCredentials } from "../../lib/registry/ecr.ts";
import { useAwsJsonApi } from "../support/aws-json-api.ts";
import { checkSigV4 } from "../support/sigv4.ts";

/**
 * ecrCredentials through the real AWS SDK against a local server standing in for ECR's API:
 * it answers with AWS's documented GetAuthorizationToken response (events/aws/) or error, and
 * records what the SDK sent so its target and signature can be checked.
 */
const RECORDED = readFileSync(new URL("../../events/aws/ecr-get-authorization-token.json", import.meta.url), "utf8");
const EXPIRES_AT = new Date("2022-05-17T06:56:13.652Z");
const KEYS = { accessKeyId: "AKIDHOISTTEST0000000", secretAccessKey: "hoist-test-secret-access-key-0000000000" };
const TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

const aws = useAwsJsonApi(() => ({ status: 200, body: RECORDED }));
const asked = aws.asked;

/** A clock `ms` before the recorded token expires. */
const before = (ms: number): Clock => ({ now: () => EXPIRES_AT.getTime() - ms });
const HOUR = 3_600_000;

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

describe("ecrCredentials: GetAuthorizationToken through the SDK", () => {
  it("sends GetAuthorizationToken in awsJson1_1, signed with the credentials given, and decodes AWS:password", async () => {
    const got = await ecrCredentials({ region: "us-east-1", endpoint: aws.endpoint }, { credentials: KEYS, cache: new Map(), clock: before(12 * HOUR) });

    expect(got).toEqual<EcrCredentials>({
      username: "AWS",
      password: "CiC1+HquevOqDexampleCompletionOfTheDocumentedTokenForHoistTests",
      expiresAt: EXPIRES_AT,
      proxyEndpoint: "https://012345678910.dkr.ecr.us-east-1.amazonaws.com",
    });
    expect(asked).toHaveLength(1);
    const req = asked[0]!;
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/");
    expect(req.headers["x-amz-target"]).toBe(TARGET);
    expect(req.headers["content-type"]).toBe("application/x-amz-json-1.1");
    expect(JSON.parse(req.body.toString("utf8"))).toEqual({});
    const signature = checkSigV4(req, req.body, KEYS.secretAccessKey);
    expect(signature.accessKeyId).toBe(KEYS.accessKeyId);
    expect(signature.scope).toMatch(/^\d{8}\/us-east-1\/ecr\/aws4_request$/);
    expect(signature.signedHeaders).toEqual(expect.arrayContaining(["host", "x-amz-date", "x-amz-target"]));
    expect(signature.valid).toBe(true);
    expect(checkSigV4(req, req.body, "another-secret").valid).toBe(false);
  });

  it("asks for the registry id given", async () => {
    await ecrCredentials({ region: "eu-west-1", endpoint: aws.endpoint, registryId: "012345678910" }, { credentials: KEYS, cache: new Map(), clock: before(12 * HOUR) });
    expect(JSON.parse(asked[0]!.body.toString("utf8"))).toEqual({ registryIds: ["012345678910"] });
  });

  it("keeps a token per region until 5 minutes before it expires", async () => {
    const cache = new Map<string, EcrCredentials>();
    const opts = (clock: Clock) => ({ credentials: KEYS, cache, clock });
    const first = await ecrCredentials({ region: "us-east-1", endpoint: aws.endpoint }, opts(before(12 * HOUR)));
    expect(await ecrCredentials({ region: "us-east-1", endpoint: aws.endpoint }, opts(before(ECR_REFRESH_BEFORE_MS + 1_000)))).toBe(first);
    expect(asked).toHaveLength(1);

    await ecrCredentials({ region: "us-west-2", endpoint: aws.endpoint }, opts(before(12 * HOUR)));
    expect(asked).toHaveLength(2);
    expect(checkSigV4(asked[1]!, asked[1]!.body, KEYS.secretAccessKey).scope).toContain("/us-west-2/ecr/");

    await ecrCredentials({ region: "us-east-1", endpoint: aws.endpoint }, opts(before(ECR_REFRESH_BEFORE_MS - 1_000)));
    expect(asked).toHaveLength(3);
  });

  it("AccessDenied: not retryable, says what the AWS identity lacks, asked once, nothing kept", async () => {
    // An AWS JSON protocol error: 400, its type in x-amzn-ErrorType and __type, AWS's message.
    const message = "User: arn:aws:iam::012345678910:user/hoist-test is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action";
    aws.answer({ status: 400, headers: { "x-amzn-errortype": "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/" }, body: JSON.stringify({ __type: "AccessDeniedException", message }) });
    const cache = new Map<string, EcrCredentials>();

    const error = await failure(ecrCredentials({ region: "us-east-1", endpoint: aws.endpoint }, { credentials: KEYS, cache }));

    expect(error).toBeInstanceOf(PermanentError);
    expect(classify(error).retryable).toBe(false);
    expect(error.message).toBe(`ECR in us-east-1 refused a registry token (AccessDeniedException: ${message}): the AWS identity needs ecr:GetAuthorizationToken`);
    expect(error.message).not.toContain(KEYS.secretAccessKey);
    expect(asked).toHaveLength(1);
    expect(cache.size).toBe(0);
  });

  it("a server error: retryable", async () => {
    aws.answer({ status: 500, body: JSON.stringify({ __type: "ServerException", message: "internal failure" }) });
    const error = await failure(ecrCredentials({ region: "us-east-1", endpoint: aws.endpoint }, { credentials: KEYS, cache: new Map() }));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toContain("ECR in us-east-1 did not give a registry token");
    expect(error.message).toContain("retry later");
  });

  it("an answer without a token: permanent, says so", async () => {
    aws.answer({ status: 200, body: JSON.stringify({ authorizationData: [] }) });
    const error = await failure(ecrCredentials({ region: "us-east-1", endpoint: aws.endpoint }, { credentials: KEYS, cache: new Map() }));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain("answered GetAuthorizationToken without a token");
  });
});
