import { describe, expect, it } from "vitest";
import { MAX_CONFIG_BYTES, readApp, type AppOptions } from "../../lib/compose/app.ts";
import { release } from "../../lib/release/release.ts";
import { appSpec as app } from "../support/app-spec.ts";
import { fakeEnvironment } from "../support/release-fakes.ts";

const lines = (...l: string[]) => l.join("\n") + "\n";

/** web (routed, built) → db (a named volume) and cache; a worker that needs the db healthy. */
const APP = lines(
  "services:", // 1
  "  web:", // 2
  "    build: .", // 3
  "    ports: ['8080']", // 4
  "    environment: { DB: 'db:5432' }", // 5
  "    depends_on: [db, cache]", // 6
  "    labels: { team: shop }", // 7
  "  worker:", // 8
  "    build: .", // 9
  "    command: ['work']", // 10
  "    depends_on: { db: { condition: service_healthy } }", // 11
  "    deploy: { replicas: 2 }", // 12
  "  db:", // 13
  "    image: postgres:16", // 14
  "    volumes: ['pgdata:/var/lib/postgresql/data', '/scratch']", // 15
  "    healthcheck: { test: ['CMD', 'pg_isready'], interval: 1s }", // 16
  "    networks: { default: { aliases: [database] } }", // 17
  "  cache:", // 18
  "    image: redis:7", // 19
  "    tmpfs: /data", // 20
  "    expose: ['6379']", // 21
  "volumes: { pgdata: {} }", // 22
);


async function refusal(text: string, options: AppOptions = {}): Promise<{ reason: string; error: string }> {
  const r = await readApp(text, options);
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.spec)}`);
  return r;
}

describe("a compose application", () => {
  it("is every service, each after what it depends on, with the routed one picked out", async () => {
    const spec = await app(APP);
    expect(spec.service).toBe("web");
    expect(spec.port).toBe(8080);
    expect(spec.runtime?.labels).toEqual({ team: "shop" });
    expect(spec.app?.dependsOn).toEqual([
      { service: "db", condition: "service_started" },
      { service: "cache", condition: "service_started" },
    ]);
    expect(spec.app?.services.map((s) => `${s.name}:${s.kind}`)).toEqual(["db:stateful", "cache:worker", "worker:worker"]);
    expect(spec.app?.volumes).toEqual(["pgdata"]);
    expect(spec.app?.networks).toEqual(["default"]);
    const [db, cache, worker] = spec.app!.services;
    expect(db?.runtime.mounts).toEqual([
      { type: "volume", source: "pgdata", target: "/var/lib/postgresql/data", readOnly: false },
      { type: "anonymous", target: "/scratch" },
    ]);
    expect(db?.networks).toEqual([{ network: "default", aliases: ["database"] }]);
    expect(cache?.runtime.mounts).toEqual([{ type: "tmpfs", target: "/data" }]);
    expect(worker).toMatchObject({ image: "", replicas: 2, command: ["work"], dependsOn: [{ service: "db", condition: "service_healthy" }] });
  });

  it("reads deploy.placement for Swarm", async () => {
    const spec = await app(APP.replace("    image: redis:7\n", "    image: redis:7\n    deploy: { placement: { constraints: [node.role==manager], preferences: [{ spread: node.labels.zone }], max_replicas_per_node: 1 } }\n"));
    expect(spec.app?.services[1]?.runtime.placement).toEqual({ constraints: ["node.role==manager"], spreads: ["node.labels.zone"], maxReplicasPerNode: 1 });
  });

  it("releases only the stage's services and what they depend on", async () => {
    const spec = await app(APP, { only: ["web"] });
    expect(spec.app?.services.map((s) => s.name)).toEqual(["db", "cache"]);
  });

  it("leaves out services of profiles the stage does not select", async () => {
    const text = APP.replace("  worker:\n", "  worker:\n    profiles: [jobs]\n");
    expect((await app(text)).app?.services.map((s) => s.name)).toEqual(["db", "cache"]);
    expect((await app(text, { profiles: ["jobs"] })).app?.services.map((s) => s.name)).toEqual(["db", "cache", "worker"]);
  });

  it("takes env_file from the repository, under environment", async () => {
    const text = APP.replace("    environment: { DB: 'db:5432' }\n", "    environment: { DB: 'db:5432' }\n    env_file: [config/web.env, { path: missing.env, required: false }]\n");
    const spec = await app(text, { readFile: async (p) => (p === "config/web.env" ? "DB=ignored\nMODE=prod\n" : undefined) });
    expect(spec.environment).toEqual({ DB: "db:5432", MODE: "prod" });
    expect((await refusal(text.replace("required: false", "required: true"), { readFile: async () => undefined })).error).toMatch(
      /^docker-compose\.yml:6: services\.web\.env_file: config\/web\.env is not in the repository/,
    );
    expect((await refusal(text.replace("config/web.env", "../../etc/passwd"), { readFile: async () => "" })).error).toMatch(/is outside the repository/);
  });

  it("routes the one service that can take traffic, preferring the repository's own, or says which to name", async () => {
    expect((await app(lines("services:", "  api:", "    image: api", "    expose: [3000]"))).port).toBe(3000);
    const two = lines("services:", "  a:", "    image: a", "    ports: ['80']", "  b:", "    image: b", "    ports: ['81']");
    expect(await refusal(two)).toMatchObject({ reason: "no-route", error: expect.stringMatching(/several services could take the environment's traffic \(a, b\): name one/) });
    expect((await app(two, { routed: "b" })).service).toBe("b");
    // None can: an app of workers, the router left alone.
    const none = await readApp(lines("services:", "  a:", "    image: a", "  b:", "    image: b"));
    expect(none.ok && [none.spec.unrouted, none.spec.app?.services.map((s) => s.name)]).toEqual([true, ["a", "b"]]);
    expect(none.ok && none.warnings[0]).toMatch(/^docker-compose\.yml: no service takes the environment's traffic/);
  });

  it.each([
    ["the host's root", "    volumes: ['/:/host']", "host-path", /services\.db\.volumes: \/ is a host path, and this environment does not allow host paths/],
    ["the engine's socket", "    volumes: ['/var/run/docker.sock:/var/run/docker.sock']", "host-path", /\/var\/run\/docker\.sock is a host path/],
    ["the socket, long syntax", "    volumes: [{ type: bind, source: /run/docker.sock, target: /s }]", "host-path", /\/run\/docker\.sock is a host path/],
    ["the repository's files", "    volumes: ['./conf:/etc/conf:ro']", "repository-path", /\.\/conf is a path in the repository/],
    ["a device", "    devices: ['/dev/sda:/dev/sda']", "host-path", /services\.db\.devices: this environment does not allow host devices/],
    ["privileged", "    privileged: true", "privileged", /services\.db\.privileged: this environment does not allow privileges/],
    ["cap_add", "    cap_add: [SYS_ADMIN]", "privileged", /services\.db\.cap_add/],
    ["the host's network", "    network_mode: host", "host-namespace", /services\.db\.network_mode: host is refused/],
    ["the host's pids", "    pid: host", "host-namespace", /services\.db\.pid: host is refused/],
    ["another container's volumes", "    volumes_from: [web]", "shared-container", /volumes_from/],
    ["an undeclared volume", "    volumes: ['other:/x']", "invalid", /the volume "other" is not declared/],
    ["a replicated stateful service", "    deploy: { replicas: 2 }\n    volumes: ['pgdata:/d']", "shared-volume", /runs one instance/],
  ])("refuses %s, naming the line", async (_name, extra, reason, message) => {
    const text = APP.replace("    image: postgres:16\n    volumes: ['pgdata:/var/lib/postgresql/data', '/scratch']\n", `    image: postgres:16\n${extra}\n`);
    const r = await refusal(text);
    expect(r.reason).toBe(reason);
    expect(r.error).toMatch(/^docker-compose\.yml:1[4-6]: /);
    expect(r.error).toMatch(message);
  });

  it("allows host paths and privileges where the environment does", async () => {
    const text = APP.replace("'/scratch'", "'/srv/data:/srv:ro'").replace("    image: postgres:16\n", "    image: postgres:16\n    cap_add: [NET_ADMIN]\n");
    const spec = await app(text, { allow: { hostPaths: true, privileged: true } });
    expect(spec.app?.services[0]?.runtime).toMatchObject({ capAdd: ["NET_ADMIN"], mounts: [expect.anything(), { type: "bind", source: "/srv/data", target: "/srv", readOnly: true }] });
  });

  it("refuses names that could not name a container, an alias or a volume", async () => {
    expect((await refusal(lines("services:", "  'web app':", "    image: a"))).error).toMatch(/^docker-compose\.yml:2: services: "web app" is not a service name/);
    expect((await refusal(lines("services:", "  web: { image: a, volumes: ['x:/x'] }", "volumes: { '../x': {} }"))).error).toMatch(/volumes: "\.\.\/x" is not a volume name/);
  });

  it("says where a depends_on cycle is", async () => {
    const r = await refusal(lines("services:", "  a:", "    image: a", "    ports: ['80']", "    depends_on: [b]", "  b:", "    image: b", "    depends_on: [a]"));
    expect(r.error).toMatch(/^docker-compose\.yml:\d+: services\.\w\.depends_on: a cycle \((a → b → a|b → a → b)\)/);
  });

  it("warns about ports of services it does not route, and keys it does not act on", async () => {
    const r = await readApp(APP.replace("    image: redis:7\n", "    image: redis:7\n    ports: ['6379:6379']\n    logging: { driver: none }\n"));
    expect(r.ok && r.warnings).toEqual([
      "docker-compose.yml:20: services.cache.ports are not published: Hoist routes only web; other services reach cache by its name on the app's network",
      "docker-compose.yml:21: services.cache.logging is not released by Hoist yet and is ignored",
    ]);
  });
});

/** The app with images filled in, as the deploy stage gives it to a release. */
const built = (text: string, image: string) => app(text, { built: { image } });

describe("compose configs", () => {
  const withConfigs = (...more: string[]) =>
    lines(
      "services:", // 1
      "  web:", // 2
      "    image: shop", // 3
      "    ports: ['8080']", // 4
      "    configs: [nginx, { source: app, target: /etc/app.ini, mode: 0440, uid: 101 }, { source: flags, target: flags.txt }]", // 5
      "configs:", // 6
      "  nginx: { file: ./conf/nginx.conf }", // 7
      "  app:", // 8
      "    content: |", // 9
      "      debug=${DEBUG:-false}", // 10
      "  flags: { environment: FLAGS }", // 11
      ...more,
    );
  const readFile = async (path: string) => (path === "deploy/conf/nginx.conf" ? "worker_processes 1;\n" : undefined);
  const server = { FLAGS: { version: "v3", secret: false } };

  it("become files: a repository file's text, content as written (interpolated), or an environment variable read when the release starts", async () => {
    const spec = await app(withConfigs(), { file: "deploy/compose.yaml", readFile, serverVariables: server, variables: { DEBUG: "true" } });
    expect(spec.secrets).toEqual([
      { name: "nginx", kind: "config", target: "/nginx", mode: 0o444, uid: 0, gid: 0, content: "worker_processes 1;\n" },
      { name: "app", kind: "config", target: "/etc/app.ini", mode: 0o440, uid: 101, gid: 0, content: "debug=true\n" },
      { name: "flags", kind: "config", target: "/flags.txt", mode: 0o444, uid: 0, gid: 0, variable: "FLAGS", version: "v3" },
    ]);
  });

  it("are refused, with their line, when undeclared, missing, external, or too large to keep", async () => {
    const options = { file: "deploy/compose.yaml", readFile, serverVariables: server };
    expect(await refusal(withConfigs().replace("  nginx: { file: ./conf/nginx.conf }\n", ""), options)).toMatchObject({ error: expect.stringMatching(/^deploy\/compose\.yaml:5: services\.web\.configs: the config "nginx" is not declared/) });
    expect(await refusal(withConfigs().replace("./conf/nginx.conf", "./conf/other.conf"), options)).toMatchObject({ reason: "repository-path", error: expect.stringMatching(/^deploy\/compose\.yaml:7: configs\.nginx\.file: \.\/conf\/other\.conf is not a file of the repository/) });
    expect(await refusal(withConfigs().replace("./conf/nginx.conf", "../../../etc/passwd"), options)).toMatchObject({ reason: "repository-path" });
    expect(await refusal(withConfigs().replace("{ environment: FLAGS }", "{ external: true }"), options)).toMatchObject({ reason: "not-yet", error: expect.stringMatching(/:11: configs\.flags: Hoist reads a config from file:/) });
    expect(await refusal(withConfigs(), { ...options, serverVariables: {} })).toMatchObject({ reason: "missing-secret", error: expect.stringMatching(/configs\.flags: the environment has no variable FLAGS/) });
    const big = await refusal(withConfigs(), { ...options, readFile: async () => "x".repeat(MAX_CONFIG_BYTES + 1) });
    expect(big.error).toMatch(new RegExp(`configs\\.nginx: ${MAX_CONFIG_BYTES + 1} bytes; a config holds at most ${MAX_CONFIG_BYTES}`));
    expect(await refusal(withConfigs().replace("    ports: ['8080']", "    ports: ['8080']\n    read_only: true"), options)).toMatchObject({ reason: "not-yet" });
  });

  it("reach the instance as files; a variable's value is kept in no record", async () => {
    const e = fakeEnvironment();
    e.host.images.add("shop");
    const values = new Map([["FLAGS", "on"]]);
    const ctx = { ...e.ctx, variables: async () => values };
    const trigger = { type: "manual" as const, by: "test" };
    const spec = await app(withConfigs(), { file: "deploy/compose.yaml", readFile, serverVariables: server });
    const v1 = await release(e.deps, ctx, { id: "r1", image: "shop", spec, trigger });
    expect(v1.status).toBe("succeeded");
    expect(e.host.instances.get(v1.instances[0]!)!.spec.files).toEqual([
      { path: "/nginx", content: "worker_processes 1;\n", mode: 0o444, uid: 0, gid: 0 },
      { path: "/etc/app.ini", content: "debug=false\n", mode: 0o440, uid: 101, gid: 0 },
      { path: "/flags.txt", content: "on", mode: 0o444, uid: 0, gid: 0 },
    ]);
    expect(JSON.stringify(await e.deps.store.getRelease("prod", "r1"))).not.toContain('"on"');
  });
});

describe("releasing a compose application (in-memory host)", () => {
  const env = () => {
    const e = fakeEnvironment();
    for (const i of ["postgres:16", "redis:7", "shop:v1", "shop:v2"]) e.host.images.add(i);
    return e;
  };
  const trigger = { type: "manual" as const, by: "test" };
  const running = (e: ReturnType<typeof env>, service: string) =>
    [...e.host.instances.values()].filter((i) => i.running && i.labels["hoist.service"] === service).map((i) => i.name).sort();

  it("starts every service in order on the app's network and volume, then leaves unchanged ones untouched", async () => {
    const e = env();
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await built(APP, "shop:v1"), trigger });
    expect(v1.status).toBe("succeeded");
    expect([...e.host.networks]).toEqual(["hoist-prod-default"]);
    expect([...e.host.volumes]).toEqual(["hoist-prod-pgdata"]);
    expect(v1.companions).toEqual({
      db: ["hoist-prod-db-r1-0"],
      cache: ["hoist-prod-cache-r1-0"],
      worker: ["hoist-prod-worker-r1-0", "hoist-prod-worker-r1-1"],
    });
    const db = e.host.instances.get("hoist-prod-db-r1-0")!;
    expect(db.spec.networks).toEqual([{ name: "hoist-prod-default", aliases: ["db", "database"] }]);
    expect(db.spec.runtime?.mounts[0]).toEqual({ type: "volume", source: "hoist-prod-pgdata", target: "/var/lib/postgresql/data", readOnly: false });
    const web = e.host.instances.get(v1.instances[0]!)!;
    expect(web.spec.networks).toEqual([{ name: "hoist-prod-default", aliases: ["web"] }]);
    expect(web.labels).toMatchObject({ team: "shop", "hoist.service": "web" });

    // v2 changes the built image: web and worker are replaced; db and cache (pulled images) are not.
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v2", spec: await built(APP, "shop:v2"), trigger });
    expect(v2.status).toBe("succeeded");
    expect(v2.companions?.db).toEqual(["hoist-prod-db-r1-0"]);
    expect(v2.companions?.cache).toEqual(["hoist-prod-cache-r1-0"]);
    expect(v2.companions?.worker).toEqual(["hoist-prod-worker-r2-0", "hoist-prod-worker-r2-1"]);
    expect(running(e, "db")).toEqual(["hoist-prod-db-r1-0"]);
    expect(running(e, "worker")).toEqual(["hoist-prod-worker-r2-0", "hoist-prod-worker-r2-1"]);
    expect(e.log).toContain("db: unchanged, left running (hoist-prod-db-r1-0)");
  });

  it("recreates a changed stateful service stop-first, on the same volume", async () => {
    const e = env();
    await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await built(APP, "shop:v1"), trigger });
    e.faults.log.length = 0;
    const changed = APP.replace("interval: 1s", "interval: 2s");
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v1", spec: await built(changed, "shop:v1"), trigger });
    expect(v2.companions?.db).toEqual(["hoist-prod-db-r2-0"]);
    const calls = e.faults.log.map((l) => l.replace(/^\d+ /, ""));
    expect(calls.indexOf("host.stop(hoist-prod-db-r1-0)")).toBeLessThan(calls.indexOf("host.start(hoist-prod-db-r2-0)"));
    expect(e.host.instances.get("hoist-prod-db-r2-0")?.spec.runtime?.mounts[0]).toMatchObject({ source: "hoist-prod-pgdata" });
    expect(e.host.volumes.size).toBe(1);
  });

  it("rolls every service back when the routed one fails its health gate", async () => {
    const e = env();
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await built(APP, "shop:v1"), trigger });
    e.probe.healthy = (i) => i.image !== "shop:v2";
    // Blue-green undoes a failed gate (a rolling update's default failure_action is pause).
    const changed = APP.replace("interval: 1s", "interval: 2s").replace("    labels: { team: shop }\n", "    labels: { team: shop }\n    x-hoist: { strategy: blue-green }\n");
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v2", spec: await built(changed, "shop:v2"), trigger });
    expect(v2).toMatchObject({ status: "failed", rolledBack: true });
    expect(running(e, "db")).toEqual(["hoist-prod-db-r1-0"]);
    expect(running(e, "worker")).toEqual(["hoist-prod-worker-r1-0", "hoist-prod-worker-r1-1"]);
    expect(running(e, "web")).toEqual(v1.instances);
    expect([...e.host.instances.keys()].filter((n) => n.includes("-r2-"))).toEqual([]);
  });

  it("releases an app of workers without touching the router", async () => {
    const e = env();
    const workers = await built(lines("services:", "  consumer:", "    build: .", "    deploy: { replicas: 2 }", "  cache:", "    image: redis:7"), "shop:v1");
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: workers, trigger });
    expect(v1).toMatchObject({ status: "succeeded", instances: [], companions: { consumer: ["hoist-prod-consumer-r1-0", "hoist-prod-consumer-r1-1"], cache: ["hoist-prod-cache-r1-0"] } });
    expect(e.router.table(e.ctx.backend)).toEqual([]);
  });

  it("rolls back when a worker's own health check fails, before the routed service changes", async () => {
    const e = env();
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await built(APP, "shop:v1"), trigger });
    e.host.containerHealth = (spec) => (spec.image === "postgres:16" && spec.name.includes("-r2-") ? "unhealthy" : "healthy");
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v2", spec: await built(APP.replace("interval: 1s", "interval: 3s"), "shop:v2"), trigger });
    expect(v2).toMatchObject({ status: "failed", rolledBack: true, error: expect.stringMatching(/^db: hoist-prod-db-r2-0 failed its health check/) });
    expect(running(e, "db")).toEqual(["hoist-prod-db-r1-0"]);
    expect(running(e, "web")).toEqual(v1.instances);
  });
});

describe("an app's routes (in-memory router)", () => {
  const trigger = { type: "manual" as const, by: "test" };
  const routed = (routes: string) =>
    app(lines("services:", "  web:", "    image: shop", "    ports: ['8080']", `    x-hoist: { strategy: blue-green, routes: ${routes} }`));

  it("go to the environment's backend in its routes map, and back to the previous ones when the release fails", async () => {
    const e = fakeEnvironment();
    e.ctx.routesMap = "/etc/haproxy/routes.map";
    e.host.images.add("shop:v1").add("shop:v2");
    const v1 = await release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await routed("[shop.test, shop.test/api]"), trigger });
    expect(v1.status).toBe("succeeded");
    expect([...e.router.maps.get("/etc/haproxy/routes.map")!]).toEqual([["shop.test/", "web_be"], ["shop.test/api", "web_be"]]);
    e.probe.healthy = (i) => i.image !== "shop:v2";
    const v2 = await release(e.deps, e.ctx, { id: "r2", image: "shop:v2", spec: await routed("[shop.example]"), trigger });
    expect(v2).toMatchObject({ status: "failed", rolledBack: true });
    expect([...e.router.maps.get("/etc/haproxy/routes.map")!.keys()]).toEqual(["shop.test/", "shop.test/api"]);
  });

  it("are refused, before anything changes, where the router has no routes map", async () => {
    const e = fakeEnvironment();
    e.host.images.add("shop:v1");
    await expect(release(e.deps, e.ctx, { id: "r1", image: "shop:v1", spec: await routed("[shop.test]"), trigger })).rejects.toThrow(
      /the app declares x-hoist\.routes, and the environment's router has no routes map: register it with `hoist env set prod --router-map FILE`/,
    );
    expect(e.host.instances.size).toBe(0);
  });

  it("are host names and path prefixes", async () => {
    expect((await routed("[Shop.Test/api/v1, { host: a.test }]")).hoist.routes).toEqual([{ host: "shop.test", path: "/api/v1" }, { host: "a.test", path: "/" }]);
    for (const bad of ["[]", "['http://shop.test']", "[shop_test]", "['shop.test/a b']", "[{ host: a.test, path: nope }]"])
      expect((await readApp(lines("services:", "  web:", "    image: shop", "    ports: ['8080']", `    x-hoist: { routes: ${bad} }`))).ok, bad).toBe(false);
  });
});

describe("compose files as Compose assembles them", () => {
  const files: Record<string, string> = {
    "deploy/common.yml": lines("services:", "  base:", "    image: shop", "    environment: { A: '1', B: '1' }", "    ports: ['8080']", "    volumes: ['/cache', 'data:/data']"),
    "deploy/db.yml": lines("services:", "  db:", "    image: postgres:16", "    volumes: ['pg:/var/lib/postgresql/data']", "volumes: { pg: {} }"),
  };
  const readFile = async (path: string) => files[path];

  it("resolves extends in the same file and in another, merging as Compose does", async () => {
    const text = lines(
      "services:",
      "  web:",
      "    extends: { file: common.yml, service: base }",
      "    environment: [B=2, C=3]",
      "    volumes: ['data:/data:ro', '/tmp/x']",
      "  worker:",
      "    extends: web",
      "    command: [work]",
      "    ports: !!null",
      "volumes: { data: {} }",
    );
    const spec = await app(text, { file: "deploy/compose.yml", readFile, routed: "web" });
    expect(spec.environment).toEqual({ A: "1", B: "2", C: "3" });
    expect(spec.runtime?.mounts).toEqual([
      { type: "anonymous", target: "/cache" },
      { type: "volume", source: "data", target: "/data", readOnly: true },
      { type: "anonymous", target: "/tmp/x" },
    ]);
    expect(spec.app?.services[0]).toMatchObject({ name: "worker", command: ["work"], environment: { A: "1", B: "2", C: "3" } });
    const cycle = await refusal(lines("services:", "  a:", "    extends: b", "  b:", "    extends: a"));
    expect(cycle.error).toMatch(/services\.a\.extends: a cycle/);
    const missing = await refusal(lines("services:", "  a:", "    extends: { file: nope.yml, service: x }"), { readFile });
    expect(missing.error).toMatch(/nope\.yml is not in the repository at this commit/);
  });

  it("adds what included files declare, and refuses one declared twice", async () => {
    const text = lines("include: [db.yml]", "services:", "  web:", "    image: shop", "    ports: ['8080']", "    depends_on: [db]");
    const spec = await app(text, { file: "deploy/compose.yml", readFile });
    expect(spec.app?.services.map((s) => `${s.name}:${s.kind}`)).toEqual(["db:stateful"]);
    expect(spec.app?.volumes).toEqual(["pg"]);
    const twice = await refusal(text.replace("  web:", "  db:\n    image: x\n  web:"), { file: "deploy/compose.yml", readFile });
    expect(twice.error).toMatch(/services\.db is defined here and in the included db\.yml: rename one/);
    expect((await refusal(lines("include: ['https://example.com/x.yml']", "services: { a: { image: a } }"), { readFile })).reason).toBe("not-yet");
  });

  it("merges the stage's later files over the first, in order", async () => {
    const base = lines("services:", "  web:", "    image: shop", "    ports: ['8080']", "    environment: { LEVEL: debug, KEEP: 'yes' }", "    deploy: { replicas: 1 }", "    command: [serve, --dev]");
    const prod = lines("services:", "  web:", "    environment: { LEVEL: info }", "    deploy: { replicas: 3 }", "    command: [serve]", "  cache:", "    image: redis:7");
    const spec = await app(base, { overrides: [{ file: "compose.prod.yml", text: prod }] });
    expect(spec).toMatchObject({ environment: { LEVEL: "info", KEEP: "yes" }, replicas: 3, command: ["serve"] });
    expect(spec.app?.services.map((s) => s.name)).toEqual(["cache"]);
  });
});

describe("!reset and !override", () => {
  it("drop or replace what an earlier file or an extended service set", async () => {
    const base = lines("services:", "  web:", "    image: shop", "    ports: ['8080', '9090']", "    environment: { A: '1', B: '2' }", "    labels: { team: shop }");
    const over = lines("services:", "  web:", "    ports: !override ['8081']", "    environment: !override { C: '3' }", "    labels: !reset {}");
    const spec = await app(base, { overrides: [{ file: "compose.override.yml", text: over }] });
    expect(spec).toMatchObject({ port: 8081, environment: { C: "3" } });
    expect(spec.runtime?.labels).toEqual({});
    const extended = await app(lines("services:", "  base:", "    image: shop", "    ports: ['8080']", "    environment: { A: '1' }", "  web:", "    extends: base", "    environment: !reset null"), { routed: "web" });
    expect(extended.environment).toEqual({});
  });
});
