import { createHash, createHmac } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/** What an AWS Signature Version 4 says of a request, and whether it is right for a secret key. */
export interface SigV4Check {
  accessKeyId: string;
  /** `yyyymmdd/region/service/aws4_request`. */
  scope: string;
  signedHeaders: string[];
  valid: boolean;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/**
 * Recomputes the signature of a request as a server received it, the way AWS does
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), for a
 * request to `/` without a query string, as the JSON protocols send.
 */
export function checkSigV4(req: { method: string; url: string; headers: IncomingHttpHeaders }, body: Buffer, secretAccessKey: string): SigV4Check {
  const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(String(req.headers.authorization));
  if (!auth) throw new Error(`not a SigV4 Authorization header: ${String(req.headers.authorization)}`);
  const [, accessKeyId, scope, signed, signature] = auth as unknown as [string, string, string, string, string];
  const signedHeaders = signed.split(";");
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${String(req.headers[name] ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
  const payloadHash = typeof req.headers["x-amz-content-sha256"] === "string" ? req.headers["x-amz-content-sha256"] : sha256(body);
  const canonicalRequest = [req.method, req.url, "", canonicalHeaders, signed, payloadHash].join("\n");
  const amzDate = String(req.headers["x-amz-date"]);
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
  const [date, region, service, terminator] = scope.split("/") as [string, string, string, string];
  const key = [region, service, terminator].reduce<Buffer>((k, part) => hmac(k, part), hmac(`AWS4${secretAccessKey}`, date));
  return { accessKeyId, scope, signedHeaders, valid: hmac(key, stringToSign).toString("hex") === signature };
}
