import { createServer, type Server, type Socket } from "node:net";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerInstances } from "../../lib/engine/docker-instances.ts";
import { instanceHostError } from "../../lib/engine/docker.ts";
import { classify } from "../../lib/errors.ts";
import { HaproxyRouter } from "../../lib/router/haproxy.ts";

/**
 * A remote engine or router that stops answering mid-release is an outage: the release is
 * retried and resumes under its id (see strategies.test.ts), rather than failing for good.
 * Real sockets on loopback: a peer that never answers, and one that resets the connection.
 */

let silent: Server;
let resetting: Server;
const port = (s: Server) => (s.address() as { port: number }).port;
const held: Socket[] = [];

beforeAll(async () => {
  silent = createServer((socket) => void held.push(socket));
  // Reads the request, then drops the connection with a RST.
  resetting = createServer((socket) => socket.once("data", () => socket.resetAndDestroy()));
  await Promise.all([silent, resetting].map((s) => new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve))));
});

afterAll(async () => {
  for (const s of held) s.destroy();
  await Promise.all([silent, resetting].map((s) => new Promise((resolve) => s.close(resolve))));
});

describe("instance hosts classify through the one error tree", () => {
  it.each([
    ["times out (docker-modem destroys the request)", () => new Dockerode({ host: "127.0.0.1", port: port(silent), protocol: "http", timeout: 100 })],
    ["resets the connection", () => new Dockerode({ host: "127.0.0.1", port: port(resetting), protocol: "http" })],
  ])("an engine that %s is retryable (503)", async (_what, docker) => {
    const err = await new DockerInstances(docker()).inspect("web-0").catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "EngineError", retryable: true, status: 503 });
    expect(classify(err).retryable).toBe(true);
  });

  it.each([
    ["ETIMEDOUT", true],
    ["ECONNRESET", true],
    ["EPIPE", true],
    ["EHOSTUNREACH", true],
    ["SELF_SIGNED_CERT_IN_CHAIN", false],
  ])("a socket failing with %s is retryable: %s", (code, retryable) => {
    const err = instanceHostError("start web-0", Object.assign(new Error(`${code} on the way`), { code }));
    expect(err).toMatchObject({ retryable, status: retryable ? 503 : 422 });
  });

  it("the engine's own refusals stay permanent, its failures retryable", () => {
    const daemon = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode });
    expect(instanceHostError("start", daemon(404, "No such image"))).toMatchObject({ retryable: false, status: 404 });
    expect(instanceHostError("start", daemon(500, "oops"))).toMatchObject({ retryable: true, status: 503 });
    // Not a manager: retrying cannot help until someone runs `docker swarm init`.
    expect(instanceHostError("start", daemon(503, "This node is not a swarm manager."))).toMatchObject({ retryable: false });
  });
});

describe("the router classifies through the one error tree", () => {
  it("HAProxy that never answers a command is retryable", async () => {
    const err = await new HaproxyRouter({ host: "127.0.0.1", port: port(silent) }, { commandTimeoutMs: 100 }).servers("web").catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "RouterError", retryable: true, status: 503 });
  });

  it("HAProxy resetting the connection mid-answer is retryable", async () => {
    const err = await new HaproxyRouter({ host: "127.0.0.1", port: port(resetting) }).servers("web").catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "RouterError", retryable: true, status: 503 });
  });
});
