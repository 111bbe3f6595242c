import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { loopbackJsonApi } from "../../lib/aws/loopback.ts";

/**
 * The loopback transport against a raw server that answers some requests and, on others,
 * drops the connection the request came on without answering: what a kept-alive socket does
 * when the server closes it just as a request goes out.
 */
let server: Server | undefined;
afterEach(async () => {
  server?.close();
  server = undefined;
});

/** A server whose nth request (from 1) is dropped when `drop(n, reused)` says so; it answers {"n": n} otherwise. */
async function serve(drop: (n: number, reused: boolean) => boolean): Promise<{ endpoint: string; sockets: Set<Socket> }> {
  let n = 0;
  const sockets = new Set<Socket>();
  server = createServer((socket) => {
    let served = 0;
    sockets.add(socket);
    socket.on("data", (chunk) => {
      if (!chunk.toString("latin1").includes("\r\n\r\n")) return;
      n += 1;
      if (drop(n, served > 0)) return void socket.destroy();
      served += 1;
      const body = JSON.stringify({ n });
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { endpoint: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, sockets };
}

describe("loopbackJsonApi", () => {
  it("sends a request again on a fresh socket when the kept-alive one it reused is dropped", async () => {
    const { endpoint, sockets } = await serve((_, reused) => reused);
    const getItem = loopbackJsonApi(endpoint, "DynamoDB_20120810")<object, { n: number }>("GetItem");
    expect(await getItem({})).toEqual({ n: 1 });
    // The second request goes out on the first one's socket, which the server drops: it is
    // sent again on a new connection, where it is answered.
    expect(await getItem({})).toEqual({ n: 3 });
    expect(sockets.size).toBe(2);
  });

  it("does not send again when a fresh socket is dropped (the server may have read the request), nor twice", async () => {
    const fresh = await serve(() => true);
    const call = loopbackJsonApi(fresh.endpoint, "DynamoDB_20120810")<object, unknown>("PutItem");
    await expect(call({})).rejects.toMatchObject({ code: expect.stringMatching(/ECONNRESET|socket hang up/i) });
    server!.close();

    let asked = 0;
    const again = await serve((n) => {
      asked = n;
      return n > 1;
    });
    const put = loopbackJsonApi(again.endpoint, "DynamoDB_20120810")<object, unknown>("PutItem");
    await put({});
    await expect(put({})).rejects.toBeInstanceOf(Error);
    // The reused socket's drop, then one fresh attempt, dropped too: no third.
    expect(asked).toBe(3);
  });
});
