import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach } from "vitest";

/** A request as the stand-in received it. */
export interface AskedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What the stand-in answers next: a status and body (with extra headers), or "hang" for no answer at all. */
export type AwsAnswer = { status: number; body: string; headers?: Record<string, string> } | "hang";

export interface AwsJsonApi {
  /** The endpoint to give the SDK client. */
  readonly endpoint: string;
  /** Every request since the test began. */
  readonly asked: AskedRequest[];
  /** Sets the answer to the requests that follow (each test begins with the default one). */
  answer(next: AwsAnswer): void;
}

/** A running stand-in, for a bench or a test's own hooks. */
export interface StartedAwsJsonApi extends AwsJsonApi {
  close(): Promise<void>;
}

/**
 * A local server standing in for an AWS API of the JSON protocol (awsJson1_1): it answers every
 * request with the current answer, sent with the headers AWS's documented samples show
 * (`Content-Type: application/x-amz-json-1.1`, `x-amzn-RequestId`), and records what the SDK
 * sent so its target, body and signature can be checked.
 */
export async function startAwsJsonApi(first: AwsAnswer, asked: AskedRequest[] = []): Promise<StartedAwsJsonApi> {
  let current = first;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      asked.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) });
      if (current === "hang") return;
      res.writeHead(current.status, { "content-type": "application/x-amz-json-1.1", "x-amzn-requestid": "123a4b56-7c89-01d2-3ef4-example5678f", ...current.headers });
      res.end(current.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    asked,
    answer(next) {
      current = next;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The stand-in for one test file: each test begins with `defaultAnswer()` and no request asked. */
export function useAwsJsonApi(defaultAnswer: () => AwsAnswer): AwsJsonApi {
  let started: StartedAwsJsonApi | undefined;
  const asked: AskedRequest[] = [];
  const api: AwsJsonApi = {
    get endpoint() {
      return started?.endpoint ?? "";
    },
    asked,
    answer(next) {
      started?.answer(next);
    },
  };
  beforeAll(async () => {
    started = await startAwsJsonApi(defaultAnswer(), asked);
  });
  afterAll(async () => {
    await started?.close();
  });
  beforeEach(() => {
    asked.length = 0;
    started?.answer(defaultAnswer());
  });
  return api;
}
