import { createServer, get, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HaproxyRouter } from "../../lib/router/haproxy.ts";
import { RouterError } from "../../lib/router/port.ts";
import { freePort, startHaproxy, type Haproxy } from "../support/haproxy.ts";
import { startLoad } from "../support/load.ts";
import { waitFor } from "../support/wait.ts";

// A real HAProxy 2.6 (started here; startHaproxy fails with how to install it if it is missing)
// in front of two tiny HTTP servers answering "a" and "b".

interface Tiny {
  port: number;
  /** Answer 500 instead of the name. */
  failing: boolean;
  close(): Promise<void>;
}

/** Answers `body`; `?delay=ms` holds the answer back, to keep a request in flight. */
async function tinyServer(body: string): Promise<Tiny> {
  const server: Server = createServer((req, res) => {
    const delay = Number(new URL(req.url ?? "/", "http://x").searchParams.get("delay") ?? 0);
    setTimeout(() => {
      res.statusCode = tiny.failing ? 500 : 200;
      res.end(tiny.failing ? "boom" : body);
    }, delay);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const tiny: Tiny = {
    port: (server.address() as AddressInfo).port,
    failing: false,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return tiny;
}

let hap: Haproxy;
let router: HaproxyRouter;
let a: Tiny;
let b: Tiny;
let backend: string;

beforeAll(async () => {
  [a, b] = await Promise.all([tinyServer("a"), tinyServer("b")]);
  hap = await startHaproxy();
  backend = hap.backend;
  router = new HaproxyRouter({ socket: hap.socket });
});

afterAll(async () => {
  await hap?.stop();
  await Promise.all([a?.close(), b?.close()]);
});

afterEach(async () => {
  a.failing = false;
  b.failing = false;
  if (!router) return;
  for (const server of await router.servers(backend)) await router.removeServer(backend, server.name);
});

async function addBoth(state: "ready" | "maint" = "ready"): Promise<void> {
  await router.addServer(backend, { name: "a", address: "127.0.0.1", port: a.port, weight: 10 });
  await router.addServer(backend, { name: "b", address: "127.0.0.1", port: b.port, weight: 10 });
  if (state === "ready") for (const name of ["a", "b"]) await router.setState(backend, name, "ready");
}

/** Bodies of `n` requests through the frontend, one after the other. */
async function hits(n: number, path = "/"): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) bodies.push(await (await fetch(`${hap.url}${path}`)).text());
  return bodies;
}

const byName = async () => Object.fromEntries((await router.servers(backend)).map((s) => [s.name, s]));

describe("HaproxyRouter against HAProxy 2.6", () => {
  it("adds servers in maint with their weight, leaves an existing one alone, and enables them", async () => {
    await addBoth("maint");
    expect(await byName()).toEqual({
      a: { name: "a", address: "127.0.0.1", port: a.port, weight: 10, state: "maint" },
      b: { name: "b", address: "127.0.0.1", port: b.port, weight: 10, state: "maint" },
    });
    // A retried add changes nothing and does not fail.
    await router.addServer(backend, { name: "a", address: "127.0.0.1", port: b.port, weight: 99 });
    expect((await byName()).a).toMatchObject({ port: a.port, weight: 10 });
    // In maint nobody gets traffic: HAProxy answers 503 itself.
    expect((await fetch(hap.url)).status).toBe(503);

    for (const name of ["a", "b"]) await router.setState(backend, name, "ready");
    expect(Object.values(await byName()).map((s) => s.state)).toEqual(["ready", "ready"]);
  });

  it("spreads traffic over both servers; weight 0 moves all of it to the other", async () => {
    await addBoth();
    expect(new Set(await hits(10))).toEqual(new Set(["a", "b"]));

    await router.setWeight(backend, "b", 0);
    expect((await byName()).b).toMatchObject({ weight: 0, state: "ready" });
    await waitFor("all traffic on a", async () => (await hits(10)).every((body) => body === "a"), 10_000);
  });

  it("shows drain and maint in servers(); neither gets new requests", async () => {
    await addBoth();
    await router.setState(backend, "a", "drain");
    await router.setState(backend, "b", "maint");
    expect(await byName()).toMatchObject({ a: { state: "drain", weight: 10 }, b: { state: "maint", weight: 10 } });
    expect((await fetch(hap.url)).status).toBe(503);
    await router.setState(backend, "a", "ready");
    expect((await byName()).a?.state).toBe("ready");
  });

  it("removeServer lets a request in flight finish, deletes the server, and is idempotent", async () => {
    await router.addServer(backend, { name: "a", address: "127.0.0.1", port: a.port, weight: 10 });
    await router.setState(backend, "a", "ready");
    const inFlight = fetch(`${hap.url}/?delay=1000`).then(async (res) => [res.status, await res.text()]);
    await waitFor("the request to reach a", async () => (await router.stats(backend))[0]?.sessions === 1, 10_000, 20);

    await router.removeServer(backend, "a");
    expect(await inFlight).toEqual([200, "a"]);
    expect(await router.servers(backend)).toEqual([]);
    await router.removeServer(backend, "a");
    await router.removeServer(backend, "never-added");
  });

  it("removeServer cuts a request that outlives drainTimeoutMs instead of hanging", async () => {
    const impatient = new HaproxyRouter({ socket: hap.socket }, { drainTimeoutMs: 300 });
    await impatient.addServer(backend, { name: "a", address: "127.0.0.1", port: a.port, weight: 10 });
    await impatient.setState(backend, "a", "ready");
    const stuck = fetch(`${hap.url}/?delay=60000`).then((res) => res.status, (err: Error) => err.message);
    await waitFor("the request to reach a", async () => (await impatient.stats(backend))[0]?.sessions === 1, 10_000, 20);

    const started = Date.now();
    await impatient.removeServer(backend, "a");
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await impatient.servers(backend)).toEqual([]);
    expect(await stuck).not.toBe(200);
  });

  it("counts responses and 5xx answers per server", async () => {
    await router.addServer(backend, { name: "a", address: "127.0.0.1", port: a.port, weight: 10 });
    await router.setState(backend, "a", "ready");
    await hits(5);
    const before = (await router.stats(backend)).find((s) => s.name === "a");
    expect(before).toMatchObject({ name: "a", responses: 5, errors5xx: 0, failures: 0, sessions: 0 });

    a.failing = true;
    expect(await hits(3)).toEqual(["boom", "boom", "boom"]);
    expect((await router.stats(backend)).find((s) => s.name === "a")).toMatchObject({ responses: 8, errors5xx: 3 });
  });

  it("counts a server that refuses connections as failures", async () => {
    const closed = await freePort();
    await router.addServer(backend, { name: "gone", address: "127.0.0.1", port: closed, weight: 10 });
    await router.setState(backend, "gone", "ready");
    expect((await fetch(hap.url)).status).toBe(503);
    expect((await router.stats(backend)).find((s) => s.name === "gone")?.failures).toBeGreaterThan(0);
  });

  it("turns HAProxy's refusals into RouterErrors that say what is wrong; taking a gone server out is no error", async () => {
    await expect(router.servers("nope")).rejects.toThrow(RouterError);
    await expect(router.servers("nope")).rejects.toThrow(/no backend "nope"/);
    await expect(router.stats("nope")).rejects.toThrow(/no backend "nope"/);
    await expect(router.addServer("nope", { name: "x", address: "127.0.0.1", port: 1, weight: 1 })).rejects.toThrow(/no backend "nope"/);
    await expect(router.setWeight(backend, "ghost", 1)).rejects.toThrow(/has no server "ghost"/);
    await expect(router.setState(backend, "ghost", "ready")).rejects.toThrow(/has no server "ghost"/);
    // Taking a gone server out is done already: a resumed release lets its old servers go again.
    await router.setWeight(backend, "ghost", 0);
    await router.setState(backend, "ghost", "drain");
    await router.setState(backend, "ghost", "maint");
    expect((await router.servers(backend)).map((s) => s.name)).not.toContain("ghost");
    await expect(router.setState("nope", "ghost", "ready")).rejects.toThrow(/no backend "nope"/);
    // Refused before anything is sent: these would change the command line.
    await expect(router.setState(backend, "a; del server app/b", "ready")).rejects.toThrow(/not a valid HAProxy name/);
    await expect(router.setWeight(backend, "a", 300)).rejects.toThrow(/from 0 .* to 256/);
    await expect(router.addServer(backend, { name: "x", address: "localhost", port: 1, weight: 1 })).rejects.toThrow(/not an IP address/);
  });

  it("says where it looked and what to check when the runtime API cannot be reached", async () => {
    const missing = new HaproxyRouter({ socket: "/nonexistent/hoist-haproxy.sock" });
    const err = await missing.servers(backend).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RouterError);
    expect((err as Error).message).toMatch(/unix:\/nonexistent\/hoist-haproxy\.sock \(ENOENT\).*router setting.*stats socket .* level admin/);
    // An outage can pass (a step is retried); a refusal is an answer (it is not).
    expect((err as RouterError).retryable).toBe(true);
    expect(((await router.servers("nope").catch((e: unknown) => e)) as RouterError).retryable).toBe(false);

    const port = await freePort();
    await expect(new HaproxyRouter({ host: "127.0.0.1", port }).stats(backend)).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  });

  it("switches a to b under load (add, drain, maint, remove) with no failed request", async () => {
    await router.addServer(backend, { name: "a", address: "127.0.0.1", port: a.port, weight: 10 });
    await router.setState(backend, "a", "ready");
    const load = await startLoad(hap.url, 100);
    await waitFor("load through a", async () => (await router.stats(backend))[0]!.responses >= 50, 10_000, 50);

    await router.addServer(backend, { name: "b", address: "127.0.0.1", port: b.port, weight: 10 });
    await router.setState(backend, "b", "ready");
    await router.setState(backend, "a", "drain");
    await router.removeServer(backend, "a");
    load.mark("switched");
    await waitFor("load through b", async () => (await router.stats(backend)).find((s) => s.name === "b")!.responses >= 50, 10_000, 50);
    const report = await load.stop();

    expect(report.failed, report.failures.join("; ")).toBe(0);
    expect([...report.bodies("switched").keys()]).toEqual(["b"]);
    expect(report.bodies().get("a")).toBeGreaterThan(0);
  });
});

describe("the load generator", () => {
  it("sends 100 requests/s for 2 s, all answered", async () => {
    const load = await startLoad(`http://127.0.0.1:${a.port}/`, 100);
    load.mark("start");
    // The measurement window itself, not a wait for a condition.
    await sleep(1_000);
    load.mark("half");
    await sleep(1_000);
    const report = await load.stop();

    expect(report.failed, report.failures.join("; ")).toBe(0);
    // ~200: the timetable is exact, the 2 s window around it is only as exact as the timers.
    expect(report.sent).toBeGreaterThanOrEqual(185);
    expect(report.sent).toBeLessThanOrEqual(225);
    expect(report.bodies().get("a")).toBe(report.sent);
    const secondHalf = report.bodies("half").get("a") ?? 0;
    expect(secondHalf).toBeGreaterThan(80);
    expect(secondHalf).toBeLessThan(120);
    expect(report.p99("start", "half")).toBeLessThan(500);
    expect(() => report.p99("nope")).toThrow(/no load mark "nope"/);
  });

  it("reports unanswered requests as failures with their reason", async () => {
    const port = await freePort();
    const load = await startLoad(`http://127.0.0.1:${port}/`, 50);
    await sleep(200); // a few requests' worth of load

    const report = await load.stop();
    expect(report.sent).toBeGreaterThan(0);
    expect(report.failed).toBe(report.sent);
    expect(report.failures[0]).toMatch(/ECONNREFUSED/);
  });
});

describe("routes on a shared HAProxy (a routes map)", () => {
  it("sends each host and path prefix to its backend, replaces a backend's routes whole, and refuses another backend's route", async () => {
    const shared = await startHaproxy({ shared: ["shop_be", "blog_be"] });
    const [a, b] = [await tinyServer("a"), await tinyServer("b")];
    try {
      const r = new HaproxyRouter({ socket: shared.socket });
      for (const [backend, tiny] of [["shop_be", a], ["blog_be", b]] as const) {
        await r.addServer(backend, { name: "s1", address: "127.0.0.1", port: tiny.port, weight: 100 });
        await r.setState(backend, "s1", "ready");
      }
      const ask = (host: string, path = "/") =>
        new Promise<string>((resolve, reject) =>
          get(`${shared.url}${path}`, { headers: { host } }, (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d));
            res.on("end", () => resolve(`${res.statusCode} ${body}`));
          }).on("error", reject),
        );
      await r.setRoutes(shared.map!, "shop_be", [{ host: "shop.test", path: "/" }]);
      await r.setRoutes(shared.map!, "blog_be", [{ host: "shop.test", path: "/blog" }, { host: "blog.test", path: "/" }]);
      expect(await ask("shop.test", "/cart")).toBe("200 a");
      expect(await ask("SHOP.test:8080", "/blog/post")).toBe("200 b"); // the longer prefix wins
      expect(await ask("blog.test")).toBe("200 b");
      expect(await ask("other.test")).toBe("404 no route");
      // Replaced whole: blog.test is gone, the other backend's routes stay.
      await r.setRoutes(shared.map!, "blog_be", [{ host: "news.test", path: "/" }]);
      expect(await ask("blog.test")).toBe("404 no route");
      expect(await ask("news.test")).toBe("200 b");
      expect(await ask("shop.test", "/blog/post")).toBe("200 a");
      await expect(r.setRoutes(shared.map!, "blog_be", [{ host: "shop.test", path: "/" }])).rejects.toThrow(/the route shop\.test\/ already sends requests to backend "shop_be"/);
      await expect(r.setRoutes("relative.map", "blog_be", [])).rejects.toBeInstanceOf(RouterError);
    } finally {
      await shared.stop();
      await a.close();
      await b.close();
    }
  });
});
