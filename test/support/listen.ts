import type { Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * Starts `server` on a free loopback port. `close` ends open keep-alive connections too, so
 * a test's afterAll does not wait for clients that never hang up.
 */
export async function listenLocal(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
