import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerClient } from "../../lib/engine/client.ts";

/**
 * A fake engine on loopback that drops the first `drops` connections of each request line
 * before answering (a RST, as an engine under load or a TLS hop does), then answers.
 */
let engine: Server;
let drops = 0;
const seen: string[] = [];

beforeAll(async () => {
  engine = createServer((req, res) => {
    const line = `${req.method} ${req.url?.split("?")[0]}`;
    seen.push(line);
    if (seen.filter((s) => s === line).length <= drops) return req.socket.resetAndDestroy();
    res.setHeader("content-type", "application/json");
    res.end(req.method === "GET" ? JSON.stringify({ Id: "abc", Name: "/web-0" }) : "");
  });
  await new Promise<void>((resolve) => engine.listen(0, "127.0.0.1", resolve));
});
afterAll(() => new Promise((resolve) => engine.close(resolve)));

const client = () => dockerClient({ host: "127.0.0.1", port: (engine.address() as { port: number }).port, protocol: "http" });

describe("the Docker client", () => {
  it("asks a read again when the connection drops before the answer", async () => {
    seen.length = 0;
    drops = 2;
    expect(await client().getContainer("web-0").inspect()).toMatchObject({ Id: "abc" });
    expect(seen).toEqual(Array(3).fill("GET /containers/web-0/json"));
  });

  it("gives up on a read after two more tries, with the drop's error", async () => {
    seen.length = 0;
    drops = 5;
    await expect(client().getContainer("web-0").inspect()).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(seen.length).toBe(3);
  });

  it("never repeats a write: whether the engine acted on it is unknown", async () => {
    seen.length = 0;
    drops = 1;
    await expect(client().getContainer("web-0").stop()).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(seen).toEqual(["POST /containers/web-0/stop"]);
  });
});
