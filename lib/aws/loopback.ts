import { Agent, request } from "node:http";

const TIMEOUT_MS = 30_000;
// Loopback servers check that a signature is present, not that it is right.
const FAKE_SIGNATURE = "AWS4-HMAC-SHA256 Credential=local/20260101/local/local/aws4_request, SignedHeaders=host;x-amz-date, Signature=0";

/** One operation of an AWS JSON-protocol API: input and output in the SDK's shapes. */
export type JsonOperation = <I, O>(operation: string) => (input: I) => Promise<O>;

/**
 * An AWS JSON-protocol API (DynamoDB, SQS) spoken directly to a compatible server on this
 * machine: the embedded dynalite and local-aws-sqs. Why not the SDK here: it costs about
 * 0.45 ms of event-loop CPU per call against 0.15 ms for a bare keep-alive request
 * (measured against dynalite), and every webhook makes such calls. Nothing the SDK adds
 * applies on loopback: no credentials to sign with, no throttling to retry, no endpoint to
 * resolve. Failures are errors named like the SDK's (the part of `__type` after `#`).
 */
export function loopbackJsonApi(endpoint: string, targetPrefix: string): JsonOperation {
  const url = new URL(endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  return <I, O>(operation: string) =>
    (input: I): Promise<O> => {
      const body = JSON.stringify(input);
      const send = (attempt: number): Promise<O> =>
        new Promise<O>((resolve, reject) => {
          const req = request(
            {
              agent,
              host: url.hostname,
              port: url.port,
              method: "POST",
              path: url.pathname,
              timeout: TIMEOUT_MS,
              headers: {
                "content-type": "application/x-amz-json-1.0",
                "content-length": Buffer.byteLength(body),
                "x-amz-target": `${targetPrefix}.${operation}`,
                "x-amz-date": "20260101T000000Z",
                authorization: FAKE_SIGNATURE,
              },
            },
            (res) => {
              const chunks: Buffer[] = [];
              res.on("data", (chunk: Buffer) => chunks.push(chunk));
              res.on("error", reject);
              res.on("end", () => {
                const text = Buffer.concat(chunks).toString("utf8");
                let parsed: O & { __type?: string; message?: string; Message?: string };
                try {
                  // The same JSON the SDK's types describe; callers validate what they keep.
                  parsed = text ? JSON.parse(text) : {};
                } catch (err) {
                  return reject(new Error(`${endpoint} answered ${operation} with ${res.statusCode} and a body that is not JSON: ${text.slice(0, 200)}`, { cause: err }));
                }
                if (res.statusCode === 200) return resolve(parsed);
                const error = new Error(parsed.message ?? parsed.Message ?? `${endpoint} answered ${operation} with ${res.statusCode}`);
                error.name = parsed.__type?.split("#").pop() || `Http${res.statusCode}`;
                reject(error);
              });
            },
          );
          req.on("timeout", () => req.destroy(new Error(`${endpoint} did not answer ${operation} within ${TIMEOUT_MS / 1000}s`)));
          req.on("error", (err: NodeJS.ErrnoException) => {
            // A kept-alive socket the server closed as this request went out: the server never
            // read it, so it is sent again on a fresh one (the SDK's handler does the same).
            if (attempt === 0 && req.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) return resolve(send(1));
            reject(err);
          });
          req.end(body);
        });
      return send(0);
    };
}

export function isLoopback(endpoint: string): boolean {
  return ["127.0.0.1", "localhost", "[::1]"].includes(new URL(endpoint).hostname);
}

