import { describe, expect, it } from "vitest";
import { readReleaseSpec } from "../../lib/compose/app.ts";
import type { ReleaseSpec } from "../../lib/release/spec.ts";
import { parseBytes, parseShortPort, splitCommand } from "../../lib/compose/service-schema.ts";
import { parseDuration } from "../../lib/duration.ts";

// Examples follow the shapes of the Compose Specification's own examples (deploy, update_config,
// resources, healthcheck, ports, environment, command); the numbers are the documented facts.

/** The release description alone: the app parts around it are tested in app.test.ts. */
async function read(text: string, service = "web"): Promise<ReleaseSpec> {
  const r = await readReleaseSpec(text, service);
  if (!r.ok) throw new Error(r.error);
  const { networks: _networks, runtime: _runtime, app: _app, ...spec } = r.spec;
  return spec;
}

async function failure(text: string, service = "web", file?: string): Promise<string> {
  const r = await readReleaseSpec(text, service, file);
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.spec)}`);
  return r.error;
}

/** A file from numbered lines, so expected line numbers can be read off the array (line 1 first). */
const lines = (...l: string[]) => l.join("\n") + "\n";

/** A minimal service with a routed port and the given extra lines (indented under the service). */
const service = (...extra: string[]) => lines("services:", "  web:", "    image: shop", "    ports: ['8080']", ...extra.map((l) => `    ${l}`));

const DEFAULT_POLICY = { parallelism: 1, delayMs: 0, order: "stop-first", failureAction: "pause", monitorMs: 5000, maxFailureRatio: 0 };
const DEFAULT_HOIST = {
  strategy: "rolling",
  steps: [10, 50, 100],
  intervalMs: 30_000,
  health: { path: "/", status: 200, timeoutMs: 2000, intervalMs: 1000, retries: 30 },
  errorThreshold: 0.05,
  drainMs: 5000,
};

describe("readReleaseSpec: a full service", () => {
  const FULL = `
services:
  frontend:
    image: awesome/webapp
    command: bundle exec thin -p 3000
    environment:
      RACK_ENV: development
      SHOW: "true"
      LEVEL: 3
      DEBUG: false
      USER_INPUT:
    ports:
      - "127.0.0.1:8001:3000"
      - "6060:6060/udp"
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost"]
      interval: 1m30s
      timeout: 10s
      retries: 3
      start_period: 40s
      start_interval: 5s
    deploy:
      mode: replicated
      replicas: 6
      endpoint_mode: vip
      update_config:
        parallelism: 2
        delay: 10s
        failure_action: rollback
        monitor: 30s
        max_failure_ratio: 0.25
        order: start-first
      rollback_config:
        parallelism: 0
        delay: 1s
        failure_action: continue
        monitor: 500ms
        max_failure_ratio: 0.5
        order: stop-first
      resources:
        limits:
          cpus: '0.50'
          memory: 50M
        reservations:
          cpus: '0.25'
          memory: 20M
    x-hoist:
      strategy: canary
      steps: [5, 25, 100]
      interval: 2m
      health: { path: /healthz, status: 204, timeout: 500ms, interval: 250ms, retries: 12 }
      error_threshold: 0.02
      drain: 10s
  db:
    image: postgres
`;

  it("reads every field", async () => {
    expect(await read(FULL, "frontend")).toEqual({
      service: "frontend",
      image: "awesome/webapp",
      command: ["bundle", "exec", "thin", "-p", "3000"],
      environment: { RACK_ENV: "development", SHOW: "true", LEVEL: "3", DEBUG: "false" },
      port: 3000,
      replicas: 6,
      update: { parallelism: 2, delayMs: 10_000, order: "start-first", failureAction: "rollback", monitorMs: 30_000, maxFailureRatio: 0.25 },
      rollback: { parallelism: 0, delayMs: 1000, order: "stop-first", failureAction: "continue", monitorMs: 500, maxFailureRatio: 0.5 },
      resources: { cpus: 0.5, memoryBytes: 50 * 1024 * 1024 },
      healthcheck: { test: ["CMD", "curl", "-f", "http://localhost"], intervalMs: 90_000, timeoutMs: 10_000, retries: 3, startPeriodMs: 40_000 },
      hoist: {
        strategy: "canary",
        steps: [5, 25, 100],
        intervalMs: 120_000,
        health: { path: "/healthz", status: 204, timeoutMs: 500, intervalMs: 250, retries: 12 },
        errorThreshold: 0.02,
        drainMs: 10_000,
      },
    });
  });

  it("gives every default for a minimal service", async () => {
    expect(await read(lines("services:", "  web:", "    ports: ['8080']"))).toEqual({
      service: "web",
      environment: {},
      port: 8080,
      replicas: 1,
      update: DEFAULT_POLICY,
      rollback: DEFAULT_POLICY,
      resources: {},
      hoist: DEFAULT_HOIST,
    });
  });

  it("treats empty sections (null) as all defaults", async () => {
    const spec = await read(service("deploy:", "x-hoist:", "environment:", "command:", "healthcheck:"));
    expect(spec.replicas).toBe(1);
    expect(spec.update).toEqual(DEFAULT_POLICY);
    expect(spec.hoist).toEqual(DEFAULT_HOIST);
    expect(spec.environment).toEqual({});
    expect(spec).not.toHaveProperty("command");
    expect(spec).not.toHaveProperty("healthcheck");
  });

  it("ignores the keys Compose allows that Hoist does not read, and the services it does not depend on", async () => {
    const text = `
x-logging: &logging
  driver: syslog
services:
  web:
    build: { context: ., dockerfile: Dockerfile }
    image: shop
    ports: ["80:8080"]
    depends_on: { db: { condition: service_healthy, restart: true } }
    volumes: [ "data:/var/lib/data" ]
    networks: { front-tier: { aliases: [shop] } }
    labels: [ "com.example.description=Accounting webapp" ]
    logging: *logging
    restart: unless-stopped
    x-vendor: { anything: [1, 2] }
    deploy:
      placement: { constraints: [disktype=ssd] }
      restart_policy: { condition: on-failure, delay: 5s, max_attempts: 3, window: 120s }
      resources: { reservations: { devices: [ { capabilities: ["gpu"] } ] } }
    healthcheck: { test: ["CMD", "true"], x-note: fine }
  db:
    image: postgres
  other:
    image: 12
    deploy: { replicas: lots }
volumes: { data: {} }
networks: { front-tier: {} }
`;
    const spec = await read(text);
    expect(spec.port).toBe(8080);
    expect(spec.replicas).toBe(1);
    expect(spec.healthcheck?.test).toEqual(["CMD", "true"]);
  });

  it("follows YAML anchors and << merge keys, as Compose files use them with x-* extensions", async () => {
    const text = `
x-deploy: &deploy
  replicas: 4
  update_config: { order: start-first }
x-hoist: &hoist
  strategy: blue-green
  drain: 1s
services:
  web:
    ports: ["8080"]
    deploy:
      <<: *deploy
      replicas: 5
    x-hoist: *hoist
`;
    const spec = await read(text);
    expect(spec.replicas).toBe(5);
    expect(spec.update.order).toBe("start-first");
    expect(spec.hoist.strategy).toBe("blue-green");
    expect(spec.hoist.drainMs).toBe(1000);
  });

  it("reads values after interpolation (the rules: interpolate.test.ts)", async () => {
    const text = lines("services:", "  web:", '    image: "registry.example.com/shop:${TAG}"', "    ports: ['${PORT:-8080}']", "    environment:", "      TAG: ${TAG:-latest}", "    command: echo $${HOME}");
    const r = await readReleaseSpec(text, "web", undefined, { TAG: "v2" });
    if (!r.ok) throw new Error(r.error);
    expect(r.spec).toMatchObject({ image: "registry.example.com/shop:v2", port: 8080, environment: { TAG: "v2" }, command: ["echo", "${HOME}"] });
  });
});

describe("environment", () => {
  it("reads the map form; numbers and booleans become strings, a name without value is unset", async () => {
    const spec = await read(service("environment:", "  RACK_ENV: development", '  SHOW: "true"', "  ON: true", "  PORT: 8080", "  RATIO: 0.5", "  EMPTY: ''", "  USER_INPUT:"));
    expect(spec.environment).toEqual({ RACK_ENV: "development", SHOW: "true", ON: "true", PORT: "8080", RATIO: "0.5", EMPTY: "" });
  });

  it("reads the list form: KEY=value, split at the first =, a bare name is unset", async () => {
    const spec = await read(service("environment:", "  - RACK_ENV=development", "  - SHOW=true", "  - URL=postgres://db/x?a=b", "  - EMPTY=", "  - USER_INPUT"));
    expect(spec.environment).toEqual({ RACK_ENV: "development", SHOW: "true", URL: "postgres://db/x?a=b", EMPTY: "" });
  });

  it.each([
    ["a nested value in the map", service("environment:", "  DB: { host: x }"), /^docker-compose\.yml:6: services\.web\.environment\.DB: expected a string, number or boolean$/],
    ["a number in the list", service("environment:", "  - A=1", "  - 5"), /^docker-compose\.yml:7: services\.web\.environment\[1\]: expected "NAME=value"$/],
    ["an entry without a name", service("environment: ['=x']"), /^docker-compose\.yml:5: services\.web\.environment\[0\]: expected "NAME=value"$/],
    ["a scalar", service("environment: FOO=bar"), /^docker-compose\.yml:5: services\.web\.environment: expected a mapping of names to values or a list of "NAME=value"$/],
  ])("rejects %s", async (_name, text, expected) => {
    expect(await failure(text)).toMatch(expected);
  });
});

describe("command", () => {
  it.each([
    ["bundle exec thin -p 3000", ["bundle", "exec", "thin", "-p", "3000"]],
    [`/bin/sh -c 'echo "hello $HOSTNAME"'`, ["/bin/sh", "-c", 'echo "hello $HOSTNAME"']],
    [`node "server main.js" --name=a\\ b`, ["node", "server main.js", "--name=a b"]],
    [`printf "%s\\n" "say \\"hi\\"" ''`, ["printf", "%s\\n", 'say "hi"', ""]],
    ["  spaced \t out  ", ["spaced", "out"]],
    ["", []],
  ])("splits %j like Compose does", async (input, expected) => {
    expect(splitCommand(input)).toEqual(expected);
    // In the file a literal $ is written $$ (Compose interpolates before it splits).
    expect((await read(service(`command: ${JSON.stringify(input.replaceAll("$", () => "$$"))}`))).command).toEqual(expected);
  });

  it("keeps the list form as written, and [] overrides the image's command with nothing", async () => {
    expect((await read(service('command: [ "bundle", "exec", "thin", "-p", "3000" ]'))).command).toEqual(["bundle", "exec", "thin", "-p", "3000"]);
    expect((await read(service("command: []"))).command).toEqual([]);
    expect(await read(service("command: null"))).not.toHaveProperty("command");
  });

  it.each([
    ["a pipe", "command: npm start | tee log", /^docker-compose\.yml:5: services\.web\.command: uses shell syntax \(\|\) but Compose runs no shell: write the command as a list, or as \["sh", "-c", "\.\.\."\]$/],
    ["&&", "command: make && ./run", /command: uses shell syntax \(&\)/],
    ["a redirection", "command: run > out.log", /command: uses shell syntax \(>\)/],
    ["an unterminated quote", `command: echo "hi`, /^docker-compose\.yml:5: services\.web\.command: has an unterminated " quote$/],
    ["a number in the list", "command: [sleep, 10]", /^docker-compose\.yml:5: services\.web\.command\[1\]: expected a string$/],
    ["a mapping", "command: { run: x }", /command: expected a string or a list of strings$/],
  ])("rejects %s", async (_name, line, expected) => {
    expect(await failure(service(line))).toMatch(expected);
  });

  it("accepts shell syntax inside quotes, as one word", async () => {
    expect((await read(service(`command: sh -c 'a | b && c > d'`))).command).toEqual(["sh", "-c", "a | b && c > d"]);
  });
});

describe("ports and the routed port", () => {
  // The Compose Specification's short-syntax examples.
  it.each([
    ["3000", { target: 3000, targetEnd: 3000, protocol: "tcp" }],
    ["3000-3005", { target: 3000, targetEnd: 3005, protocol: "tcp" }],
    ["8000:8000", { target: 8000, targetEnd: 8000, protocol: "tcp" }],
    ["9090-9091:8080-8081", { target: 8080, targetEnd: 8081, protocol: "tcp" }],
    ["49100:22", { target: 22, targetEnd: 22, protocol: "tcp" }],
    ["8000-9000:80", { target: 80, targetEnd: 80, protocol: "tcp" }],
    ["127.0.0.1:8001:8001", { target: 8001, targetEnd: 8001, protocol: "tcp" }],
    ["127.0.0.1:5000-5010:5000-5010", { target: 5000, targetEnd: 5010, protocol: "tcp" }],
    ["127.0.0.1::5000", { target: 5000, targetEnd: 5000, protocol: "tcp" }],
    ["::1:6000:6000", { target: 6000, targetEnd: 6000, protocol: "tcp" }],
    ["[::1]:6001:6001", { target: 6001, targetEnd: 6001, protocol: "tcp" }],
    ["6060:6060/udp", { target: 6060, targetEnd: 6060, protocol: "udp" }],
    ["127.0.0.1:80:8080/tcp", { target: 8080, targetEnd: 8080, protocol: "tcp" }],
  ])("parses the short syntax %s", (input, expected) => {
    expect(parseShortPort(input)).toEqual(expected);
  });

  it.each([["80:8080"], ["127.0.0.1:80:8080/tcp"], ["8080"]])("routes to the container port of %s", async (entry) => {
    expect((await read(lines("services:", "  web:", `    ports: ["${entry}"]`))).port).toBe(8080);
  });

  it("routes to a port given as a bare number", async () => {
    expect((await read(lines("services:", "  web:", "    ports: [8080]"))).port).toBe(8080);
  });

  it("reads the long syntax", async () => {
    const text = lines(
      "services:",
      "  web:",
      "    ports:",
      "      - name: web",
      "        target: 80",
      "        host_ip: 127.0.0.1",
      '        published: "8080"',
      "        protocol: tcp",
      "        app_protocol: http",
      "        mode: host",
      "      - name: web-secured",
      "        target: 443",
      '        published: "8083-9000"',
    );
    expect((await read(text)).port).toBe(80);
    expect((await read(lines("services:", "  web:", "    ports: [ { target: '8080', published: 80 } ]"))).port).toBe(8080);
  });

  it("takes x-hoist.port over the ports list, and needs no ports with it", async () => {
    expect((await read(lines("services:", "  web:", "    ports: ['80:3000']", "    x-hoist: { port: 9000 }"))).port).toBe(9000);
    expect((await read(lines("services:", "  web:", "    x-hoist: { port: 9000 }"))).port).toBe(9000);
  });

  it.each([
    ["no port at all", lines("services:", "  web:", "    image: shop"), /^docker-compose\.yml:2: services\.web: no port to route to: set x-hoist\.port, or list the container port under ports, or under expose$/],
    ["a range first", lines("services:", "  web:", "    ports:", "      - '3000-3005'"), /^docker-compose\.yml:4: services\.web\.ports\[0\]: a port range can't be the routed port: set x-hoist\.port$/],
    ["a udp port first", lines("services:", "  web:", "    ports: ['53:53/udp', '8080']"), /^docker-compose\.yml:3: services\.web\.ports\[0\]: the routed port must be tcp, not udp: set x-hoist\.port$/],
    ["garbage", lines("services:", "  web:", "    ports:", "      - '8080'", "      - 'http'"), /^docker-compose\.yml:5: services\.web\.ports\[1\]: expected a port such as "8080", "80:8080" or "127\.0\.0\.1:80:8080\/tcp"$/],
    ["port 0", lines("services:", "  web:", "    ports: ['0']"), /ports\[0\]: expected a port such as/],
    ["port 70000", lines("services:", "  web:", "    ports: ['70000:80']"), /ports\[0\]: expected a port such as/],
    ["a bad protocol", lines("services:", "  web:", "    ports: ['80:80/http']"), /ports\[0\]: .*protocol must be one of tcp, udp, sctp$/],
    ["a bad host IP", lines("services:", "  web:", "    ports: ['localhost:80:80']"), /ports\[0\]: .*"localhost" is not an IP address$/],
    ["ranges of different sizes", lines("services:", "  web:", "    ports: ['9090-9092:8080-8081']"), /ports\[0\]: the host range 9090-9092 and the container range 8080-8081 differ in size$/],
    ["a long entry without target", lines("services:", "  web:", "    ports:", "      - published: 80"), /^docker-compose\.yml:4: services\.web\.ports\[0\]\.target: expected a port number from 1 to 65535$/],
    ["a bad long mode", lines("services:", "  web:", "    ports:", "      - target: 80", "        mode: global"), /^docker-compose\.yml:5: services\.web\.ports\[0\]\.mode: expected one of host, ingress$/],
    ["a bad long protocol", lines("services:", "  web:", "    ports:", "      - target: 80", "        protocol: http"), /^docker-compose\.yml:5: services\.web\.ports\[0\]\.protocol: expected one of tcp, udp, sctp$/],
    ["a list entry", lines("services:", "  web:", "    ports: [[80]]"), /ports\[0\]: expected a port such as .*, or a mapping with a target$/],
    ["a mapping instead of a list", lines("services:", "  web:", "    ports: { web: 80 }"), /^docker-compose\.yml:3: services\.web\.ports: expected a list of ports$/],
    ["x-hoist.port out of range", lines("services:", "  web:", "    x-hoist:", "      port: 0"), /^docker-compose\.yml:4: services\.web\.x-hoist\.port: expected a whole number from 1 to 65535$/],
  ])("rejects %s", async (_name, text, expected) => {
    expect(await failure(text)).toMatch(expected);
  });
});

describe("healthcheck", () => {
  it("reads the specification's example", async () => {
    const spec = await read(service("healthcheck:", '  test: ["CMD", "curl", "-f", "http://localhost"]', "  interval: 1m30s", "  timeout: 10s", "  retries: 3", "  start_period: 40s", "  start_interval: 5s"));
    expect(spec.healthcheck).toEqual({ test: ["CMD", "curl", "-f", "http://localhost"], intervalMs: 90_000, timeoutMs: 10_000, retries: 3, startPeriodMs: 40_000 });
  });

  it("reads a string test as CMD-SHELL, the same as the list form", async () => {
    const asString = (await read(service("healthcheck:", "  test: curl -f https://localhost || exit 1"))).healthcheck;
    const asList = (await read(service("healthcheck:", '  test: ["CMD-SHELL", "curl -f https://localhost || exit 1"]'))).healthcheck;
    expect(asString?.test).toEqual(["CMD-SHELL", "curl -f https://localhost || exit 1"]);
    expect(asList).toEqual(asString);
  });

  it("takes Docker's HEALTHCHECK defaults: interval 30s, timeout 30s, retries 3, start period 0s", async () => {
    expect((await read(service("healthcheck:", '  test: ["CMD", "true"]'))).healthcheck).toEqual({ test: ["CMD", "true"], intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 });
  });

  it("turns disable: true and NONE into Docker's [\"NONE\"], and a missing test into [] (the image's test)", async () => {
    expect((await read(service("healthcheck:", "  disable: true"))).healthcheck?.test).toEqual(["NONE"]);
    expect((await read(service("healthcheck:", '  test: ["NONE"]'))).healthcheck?.test).toEqual(["NONE"]);
    expect((await read(service("healthcheck:", "  interval: 5s"))).healthcheck).toEqual({ test: [], intervalMs: 5000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 });
  });

  it.each([
    ["an unknown first item", '  test: ["RUN", "curl"]', /^docker-compose\.yml:6: services\.web\.healthcheck\.test: expected a command string, or a list starting with "CMD", "CMD-SHELL" or "NONE"$/],
    ["CMD without a program", '  test: ["CMD"]', /healthcheck\.test: "CMD" needs the program to run$/],
    ["CMD-SHELL with two strings", '  test: ["CMD-SHELL", "a", "b"]', /healthcheck\.test: "CMD-SHELL" takes exactly one command string$/],
    ["NONE with arguments", '  test: ["NONE", "x"]', /healthcheck\.test: "NONE" takes no arguments$/],
    ["a number as interval", "  interval: 10", /^docker-compose\.yml:6: services\.web\.healthcheck\.interval: expected a duration such as "10s" or "1m30s"$/],
    ["a bad timeout", "  timeout: 10 seconds", /^docker-compose\.yml:6: services\.web\.healthcheck\.timeout: expected a duration/],
    ["a bad start_period", "  start_period: soon", /healthcheck\.start_period: expected a duration/],
    ["negative retries", "  retries: -1", /^docker-compose\.yml:6: services\.web\.healthcheck\.retries: expected a whole number ≥ 0$/],
    ["disable with a test", '  test: ["CMD", "true"]\n      disable: true', /^docker-compose\.yml:7: services\.web\.healthcheck\.disable: test and disable: true can't both be set$/],
  ])("rejects %s", async (_name, line, expected) => {
    expect(await failure(service("healthcheck:", line))).toMatch(expected);
  });
});

describe("deploy", () => {
  it("reads the update_config example, defaulting the rest", async () => {
    const spec = await read(service("deploy:", "  update_config:", "    parallelism: 2", "    delay: 10s", "    order: stop-first"));
    expect(spec.update).toEqual({ ...DEFAULT_POLICY, parallelism: 2, delayMs: 10_000 });
    expect(spec.rollback).toEqual(DEFAULT_POLICY);
  });

  it("reads rollback_config separately from update_config", async () => {
    const spec = await read(service("deploy:", "  rollback_config: { parallelism: 0, order: start-first, failure_action: continue }"));
    expect(spec.rollback).toEqual({ ...DEFAULT_POLICY, parallelism: 0, order: "start-first", failureAction: "continue" });
    expect(spec.update).toEqual(DEFAULT_POLICY);
  });

  it("reads numbers written as strings, as Compose's schema allows", async () => {
    const spec = await read(service("deploy:", "  replicas: '3'", "  update_config: { parallelism: '2', max_failure_ratio: '0.1' }", "  resources: { limits: { cpus: '1.5' } }"));
    expect(spec.replicas).toBe(3);
    expect(spec.update.parallelism).toBe(2);
    expect(spec.update.maxFailureRatio).toBe(0.1);
    expect(spec.resources.cpus).toBe(1.5);
  });

  it("allows replicas: 0", async () => {
    expect((await read(service("deploy: { replicas: 0 }"))).replicas).toBe(0);
  });

  it.each([
    ["cpus as a number and memory in gigabytes", "resources: { limits: { cpus: 2, memory: 1G } }", { cpus: 2, memoryBytes: 1024 ** 3 }],
    ["memory as a plain byte count", "resources: { limits: { memory: 1048576 } }", { memoryBytes: 1048576 }],
    ["memory in the spec's lower-case units", "resources: { limits: { memory: 300m } }", { memoryBytes: 300 * 1024 ** 2 }],
    ["zero limits (no limit)", "resources: { limits: { cpus: 0, memory: '0' } }", {}],
    ["reservations only", "resources: { reservations: { cpus: '0.25', memory: 20M } }", {}],
  ])("reads resources: %s", async (_name, line, expected) => {
    expect((await read(service("deploy:", `  ${line}`))).resources).toEqual(expected);
  });

  it.each([
    ["replicas in words", "  replicas: three", /^docker-compose\.yml:6: services\.web\.deploy\.replicas: expected a whole number ≥ 0$/],
    ["fractional replicas", "  replicas: 1.5", /deploy\.replicas: expected a whole number ≥ 0$/],
    ["an unknown failure_action", "  update_config: { failure_action: retry }", /^docker-compose\.yml:6: services\.web\.deploy\.update_config\.failure_action: expected one of continue, rollback, pause$/],
    ["rollback as the rollback's failure_action", "  rollback_config: { failure_action: rollback }", /deploy\.rollback_config\.failure_action: expected one of continue, pause$/],
    ["an unknown order", "  update_config: { order: random }", /deploy\.update_config\.order: expected one of stop-first, start-first$/],
    ["a bad delay", "  update_config: { delay: 10 }", /deploy\.update_config\.delay: expected a duration such as "10s" or "1m30s"$/],
    ["a bad monitor", "  rollback_config: { monitor: 5 minutes }", /deploy\.rollback_config\.monitor: expected a duration/],
    ["a ratio above 1", "  update_config: { max_failure_ratio: 1.5 }", /deploy\.update_config\.max_failure_ratio: expected a ratio from 0 to 1$/],
    ["negative parallelism", "  update_config: { parallelism: -1 }", /deploy\.update_config\.parallelism: expected a whole number ≥ 0$/],
    ["bad cpus", "  resources: { limits: { cpus: half } }", /deploy\.resources\.limits\.cpus: expected a number of CPUs such as 0\.5 or "1\.5"$/],
    ["bad memory", "  resources: { limits: { memory: 512 megs } }", /deploy\.resources\.limits\.memory: expected a byte value such as "512M" or "1G"$/],
    ["update_config as a list", "  update_config: [parallelism]", /^docker-compose\.yml:6: services\.web\.deploy\.update_config: expected a mapping$/],
  ])("rejects %s", async (_name, line, expected) => {
    expect(await failure(service("deploy:", line))).toMatch(expected);
  });
});

describe("x-hoist", () => {
  it("reads strategies", async () => {
    for (const strategy of ["rolling", "blue-green", "canary"]) expect((await read(service(`x-hoist: { strategy: ${strategy} }`))).hoist.strategy).toBe(strategy);
  });

  it.each([
    ["2m", 120_000],
    ["30s", 30_000],
    ["1m30s", 90_000],
    ["1.5s", 1500],
    [90, 90_000],
    [0.5, 500],
  ])("reads the canary interval %j", async (interval, ms) => {
    expect((await read(service(`x-hoist: { interval: ${JSON.stringify(interval)} }`))).hoist.intervalMs).toBe(ms);
  });

  it("defaults the health check field by field", async () => {
    expect((await read(service("x-hoist: { health: { path: /up } }"))).hoist.health).toEqual({ ...DEFAULT_HOIST.health, path: "/up" });
    expect((await read(service("x-hoist: { health: }"))).hoist.health).toEqual(DEFAULT_HOIST.health);
  });

  it("reads drain and error_threshold", async () => {
    const hoist = (await read(service("x-hoist: { drain: 0, error_threshold: 0 }"))).hoist;
    expect(hoist.drainMs).toBe(0);
    expect(hoist.errorThreshold).toBe(0);
  });

  it.each([
    [[100], [100]],
    [[1, 2, 100], [1, 2, 100]],
  ])("accepts the steps %j", async (steps, expected) => {
    expect((await read(service(`x-hoist: { strategy: canary, steps: ${JSON.stringify(steps)} }`))).hoist.steps).toEqual(expected);
  });

  it.each([
    ["an unknown strategy", "  strategy: yolo", /^docker-compose\.yml:6: services\.web\.x-hoist\.strategy: expected one of rolling, blue-green, canary$/],
    ["steps that go down", "  steps: [10, 50, 40, 100]", /^docker-compose\.yml:6: services\.web\.x-hoist\.steps\[2\]: steps must increase: 40 follows 50$/],
    ["a repeated step", "  steps: [50, 50, 100]", /x-hoist\.steps\[1\]: steps must increase: 50 follows 50$/],
    ["steps not ending at 100", "  steps: [10, 50]", /^docker-compose\.yml:6: services\.web\.x-hoist\.steps\[1\]: the last step must be 100$/],
    ["a step of 0", "  steps: [0, 100]", /x-hoist\.steps\[0\]: expected a whole percentage from 1 to 100$/],
    ["a step above 100", "  steps: [50, 150]", /x-hoist\.steps\[1\]: expected a whole percentage from 1 to 100$/],
    ["a fractional step", "  steps: [12.5, 100]", /x-hoist\.steps\[0\]: expected a whole percentage from 1 to 100$/],
    ["no steps", "  steps: []", /x-hoist\.steps: expected a list of percentages ending with 100, such as \[10, 50, 100\]$/],
    ["steps as a string", "  steps: '10,50,100'", /x-hoist\.steps: expected a list of percentages/],
    ["a garbage interval", "  interval: fortnightly", /^docker-compose\.yml:6: services\.web\.x-hoist\.interval: expected a duration such as "30s", "1m30s" or a number of seconds$/],
    ["a negative interval", "  interval: -5", /x-hoist\.interval: expected a duration/],
    ["an error_threshold above 1", "  error_threshold: 5", /x-hoist\.error_threshold: expected a ratio from 0 to 1$/],
    ["an error_threshold as a string", "  error_threshold: '0.1'", /x-hoist\.error_threshold: expected a ratio from 0 to 1$/],
    ["a bad drain", "  drain: 5 secs", /x-hoist\.drain: expected a duration/],
    ["a health path without /", "  health: { path: healthz }", /x-hoist\.health\.path: expected a URL path starting with "\/"$/],
    ["a health status out of range", "  health: { status: 42 }", /x-hoist\.health\.status: expected a whole number from 100 to 599$/],
    ["a zero health timeout", "  health: { timeout: 0s }", /x-hoist\.health\.timeout: expected a positive duration/],
    ["zero health retries", "  health: { retries: 0 }", /x-hoist\.health\.retries: expected a whole number ≥ 1$/],
    // An environment's router backend is set on the server: a commit must not pick another one.
    ["a route (the backend is the environment's)", "  route: { backend: web_be }", /^docker-compose\.yml:5: services\.web\.x-hoist: unknown field "route"$/],
    ["an unknown field", "  stratgy: canary", /^docker-compose\.yml:5: services\.web\.x-hoist: unknown field "stratgy"$/],
    ["an unknown health field", "  health: { url: / }", /x-hoist\.health: unknown field "url"$/],
    ["camelCase instead of snake_case", "  errorThreshold: 0.1", /x-hoist: unknown field "errorThreshold"$/],
  ])("rejects %s", async (_name, line, expected) => {
    expect(await failure(service("x-hoist:", line))).toMatch(expected);
  });

  it("rejects x-hoist that is not a mapping", async () => {
    expect(await failure(service("x-hoist: canary"))).toMatch(/^docker-compose\.yml:5: services\.web\.x-hoist: expected a mapping$/);
  });

  it("does not read a top-level x-hoist (a place for anchors)", async () => {
    const text = lines("x-hoist:", "  web: { strategy: canary }", "services:", "  web:", "    ports: ['8080']");
    expect((await read(text)).hoist.strategy).toBe("rolling");
  });
});

describe("errors: the file, the line and the path", () => {
  it("names the line of the field, as in docker-compose.yml:7: services.web.deploy.replicas", async () => {
    const text = lines(
      "services:", // 1
      "  web:", // 2
      "    image: shop", // 3
      "    ports:", // 4
      "      - '80:8080'", // 5
      "    deploy:", // 6
      "      replicas: many", // 7
    );
    expect(await failure(text)).toBe("docker-compose.yml:7: services.web.deploy.replicas: expected a whole number ≥ 0");
  });

  it("uses the file name it is given", async () => {
    expect(await failure(service("deploy: { replicas: x }"), "web", "compose.prod.yaml")).toMatch(/^compose\.prod\.yaml:5: services\.web\.deploy\.replicas: /);
    expect(await failure(service(), "api", "compose.yaml")).toBe('compose.yaml: no service "api" (services: web)');
  });

  it("reports several mistakes at once, each with its line", async () => {
    const error = await failure(service("deploy:", "  replicas: x", "  update_config: { order: sideways }"));
    expect(error).toBe(
      "docker-compose.yml:6: services.web.deploy.replicas: expected a whole number ≥ 0; docker-compose.yml:7: services.web.deploy.update_config.order: expected one of stop-first, start-first",
    );
  });

  it("points a mistake that came through a merge key at the anchor's text", async () => {
    const text = lines("x-deploy: &deploy", "  replicas: lots", "services:", "  web:", "    ports: ['8080']", "    deploy:", "      <<: *deploy");
    expect(await failure(text)).toBe("docker-compose.yml:2: services.web.deploy.replicas: expected a whole number ≥ 0");
  });

  it("names a missing service and lists the others", async () => {
    const text = lines("services:", "  web:", "    image: shop", "  worker:", "    image: shop");
    expect(await failure(text, "api")).toBe('docker-compose.yml: no service "api" (services: web, worker)');
  });

  it.each([
    ["an empty file", ""],
    ["no services key", "name: shop\n"],
    ["an empty services key", "services:\n"],
  ])("says when %s declares no services", async (_name, text) => {
    expect(await failure(text)).toBe('docker-compose.yml: no service "web" (the file declares no services)');
  });

  it.each([
    ["broken YAML", lines("services:", "  web:", "    ports: [8080", "    image: x"), /^docker-compose\.yml:\d+: invalid YAML: /],
    ["a duplicate key", lines("services:", "  web:", "    image: a", "    image: b"), /^docker-compose\.yml:4: invalid YAML: Map keys must be unique/],
    ["a bad indentation", lines("services:", "  web:", "    image: a", "   ports: []"), /^docker-compose\.yml:4: invalid YAML: /],
    ["an unknown alias", lines("services:", "  web: *base"), /^docker-compose\.yml:2: alias \*base is not defined$/],
    ["a list at the top", lines("- services"), /^docker-compose\.yml:1: \(file\): expected a mapping with a "services" key$/],
    ["services as a list", lines("name: x", "services: [web]"), /^docker-compose\.yml:2: services: expected a mapping of service names to services$/],
    ["a service that is not a mapping", lines("services:", "  web: nginx"), /^docker-compose\.yml:2: services\.web: expected a mapping$/],
    ["an empty service", lines("services:", "  web:"), /^docker-compose\.yml:2: services\.web: expected a mapping$/],
    ["a non-string image", lines("services:", "  web:", "    image: 12", "    ports: ['80']"), /^docker-compose\.yml:3: services\.web\.image: expected a string$/],
  ])("rejects %s", async (_name, text, expected) => {
    expect(await failure(text)).toMatch(expected);
  });
});

describe("parseDuration (Go durations, as Compose uses)", () => {
  it.each([
    ["10ms", 10],
    ["40s", 40_000],
    ["1m30s", 90_000],
    ["1h5m30s20ms", 3_930_020],
    ["1h2m3s", 3_723_000],
    ["500ms", 500],
    ["1.5s", 1500],
    [".5s", 500],
    ["1500us", 2], // rounded to the nearest millisecond
    ["1500µs", 2],
    ["2000000ns", 2],
    ["0", 0],
    ["0s", 0],
  ])("%s is %d ms", (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([[""], ["10"], ["1x"], ["-1s"], ["+1s"], ["1m 30s"], ["s"], ["1.5.5s"], ["1d"], ["1S"], ["${DELAY}"]])("rejects %j", (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});

describe("parseBytes (Compose byte values)", () => {
  it.each([
    ["2b", 2],
    ["1024kb", 1024 * 1024],
    ["2048k", 2048 * 1024],
    ["300m", 300 * 1024 ** 2],
    ["1gb", 1024 ** 3],
    ["512M", 512 * 1024 ** 2],
    ["512MiB", 512 * 1024 ** 2],
    ["1.5g", 1.5 * 1024 ** 3],
    ["100", 100],
  ])("%s is %d bytes", (input, bytes) => {
    expect(parseBytes(input)).toBe(bytes);
  });

  it.each([[""], ["M"], ["-1m"], ["1x"], ["1 megabyte"], ["1.2.3m"]])("rejects %j", (input) => {
    expect(parseBytes(input)).toBeUndefined();
  });
});
