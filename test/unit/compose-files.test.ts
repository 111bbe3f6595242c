import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Run } from "../../lib/pipeline/run.ts";
import { readApp, readReleaseSpec } from "../../lib/compose/app.ts";
import { readBuilds } from "../../lib/compose/builds.ts";
import { REFUSALS } from "../../lib/compose/refusals.ts";
import type { Environment } from "../../lib/release/environment.ts";
import { deployStage, type DeployDeps } from "../../lib/runs/deploy.ts";
import { readYamlFile } from "../../lib/yaml/isolate.ts";
import { COMPOSE_FILE_LIMITS } from "../../lib/yaml/limits.ts";

const lines = (...l: string[]) => l.join("\n") + "\n";

describe("keys Hoist does not act on yet", () => {
  const text = lines(
    "name: shop", // 1
    "x-logging: &logging { driver: syslog }", // 2
    "services:", // 3
    "  web:", // 4
    "    build: .", // 5
    "    image: shop", // 6
    "    ports: ['80:8080']", // 7
    "    volumes: ['data:/data']", // 8
    "    env_file: .env", // 9
    "    depends_on: [db]", // 10
    "    logging: *logging", // 11
    "    x-vendor: {}", // 12
    "    healthcheck: { test: [CMD, 'true'], start_interval: 1s }", // 13
    "    deploy:", // 14
    "      mode: replicated", // 15
    "      resources: { limits: { cpus: '1', pids: 10 }, reservations: { memory: 1G } }", // 16
    "  db:", // 17
    "    image: postgres", // 18
    "    volumes: ['db:/var/lib/postgresql/data']", // 19
    "volumes: { data: {}, db: {} }", // 20
    "secrets: { key: { file: ./key } }", // 21
  );

  const readFile = async (path: string) => (path === ".env" ? "A=1\n" : undefined);

  it("are listed with their lines, for the released services and the file's top level only", async () => {
    const r = await readApp(text, { routed: "web", readFile });
    if (!r.ok) throw new Error(r.error);
    expect(r.warnings).toEqual([
      "docker-compose.yml:11: services.web.logging is not released by Hoist yet and is ignored",
      "docker-compose.yml:13: services.web.healthcheck.start_interval is not released by Hoist yet and is ignored",
      "docker-compose.yml:15: services.web.deploy.mode is not released by Hoist yet and is ignored",
      "docker-compose.yml:16: services.web.deploy.resources.limits.pids is not released by Hoist yet and is ignored",
      "docker-compose.yml:16: services.web.deploy.resources.reservations is not released by Hoist yet and is ignored",
    ]);
  });

  it("point at the anchor's text when they came through a merge key", async () => {
    const r = await readReleaseSpec(lines("x-common: &common", "  logging: { driver: none }", "services:", "  web:", "    <<: *common", "    ports: ['80']"), "web");
    expect(r.ok && r.warnings).toEqual(["docker-compose.yml:2: services.web.logging is not released by Hoist yet and is ignored"]);
  });

  it("are written to the deploy stage's log", async () => {
    const env = { name: "staging", protection: {}, allow: { hostPaths: false, privileged: false } } as Environment;
    const deps = {
      store: { getEnvironment: async () => env, listEnvironments: async () => [env] },
      source: { readFile: async (_repo: unknown, _sha: string, path: string) => (path === "docker-compose.yml" ? text : readFile(path)) },
    } as unknown as DeployDeps;
    const run = { repo: { provider: "github", fullName: "acme/shop" }, sha: "a".repeat(40), stages: [], branch: "main" } as unknown as Run;
    const log: string[] = [];
    // No image: the stage stops right after reading the compose file.
    const result = await deployStage(deps, run, 0, { kind: "deploy", environment: "staging", compose: "docker-compose.yml", service: "web" }, { log: (l) => log.push(l) });
    expect(result).toMatchObject({ ok: false, error: "no image to deploy: the run built nothing" });
    expect(log).toContain("warning: docker-compose.yml:11: services.web.logging is not released by Hoist yet and is ignored");
    expect(log.filter((l) => l.startsWith("warning: "))).toHaveLength(5);
  });
});

describe("a compose file that merges ~50 x-* anchors (the shape of Sentry's self-hosted one)", () => {
  // Built here rather than copied: anchors for restart policy, healthcheck defaults, depends_on sets,
  // environment groups, each merged into a defaults anchor and from there into ~60 services.
  const anchors = Array.from({ length: 50 }, (_, i) => `x-part-${i}: &part${i}\n  environment:\n    PART_${i}: "${i}"\n  labels: { part: "${i}" }\n`);
  const defaults = `x-defaults: &defaults\n  <<: [${anchors.map((_, i) => `*part${i}`).join(", ")}]\n  restart: unless-stopped\n  healthcheck: &health\n    interval: 10s\n    timeout: 5s\n    retries: 30\n`;
  const services = Array.from(
    { length: 60 },
    (_, i) => `  svc${i}:\n    <<: *defaults\n    image: "getsentry/svc:${i}"\n    command: run svc${i}\n    healthcheck:\n      <<: *health\n      test: ["CMD", "true"]\n`,
  );
  const web = `  web:\n    <<: *defaults\n    image: "getsentry/sentry:nightly"\n    ports: ["9000"]\n    environment: { SENTRY_CONF: /etc/sentry }\n    x-hoist: { strategy: rolling }\n`;
  const text = `${anchors.join("")}${defaults}services:\n${web}${services.join("")}volumes: { sentry-data: { external: true } }\n`;

  it("parses, with the merged values where Compose puts them", async () => {
    const r = await readReleaseSpec(text, "web");
    if (!r.ok) throw new Error(r.error);
    expect(r.spec.port).toBe(9000);
    // An explicit environment replaces the merged one (merge keys do not merge deeply).
    expect(r.spec.environment).toEqual({ SENTRY_CONF: "/etc/sentry" });
    expect(r.spec.healthcheck).toMatchObject({ intervalMs: 10_000, retries: 30 });
    expect(r.spec.runtime?.labels).toEqual({ part: "0" });
    expect(r.spec.runtime?.restart).toEqual({ name: "unless-stopped" });
    const svc = await readReleaseSpec(text.replace('  svc7:\n', '  svc7:\n    ports: ["80"]\n'), "svc7");
    if (!svc.ok) throw new Error(svc.error);
    expect(svc.spec.environment).toEqual({ PART_0: "0" });
    expect(svc.spec.healthcheck).toMatchObject({ test: ["CMD", "true"], intervalMs: 10_000 });
  });
});

describe("the compose corpus (/work/shared/corpus/compose)", () => {
  const dir = "/work/shared/corpus/compose";
  if (!existsSync(dir)) throw new Error(`${dir} is missing: it holds the real-world compose files this test reads`);
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  // Each file is read under its path in its repository (index.json), so that the files it
  // includes or extends are found beside it; the env files they name are not in the corpus and
  // read as empty.
  const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as { file: string; repo: string; path: string }[];
  const stored = new Map(index.map((e) => [`${e.repo}:${e.path}`, e.file]));
  const sourceOf = (f: string) => {
    const entry = index.find((e) => e.file === f);
    if (!entry) throw new Error(`${f} is not in ${dir}/index.json`);
    return entry;
  };
  const readerFor = (repo: string) => async (path: string) => {
    const name = stored.get(`${repo}:${path}`);
    return name ? readFileSync(join(dir, name), "utf8") : "";
  };
  const WARNING = /^(.+ is not released by Hoist yet and is ignored|the "\w+" variable is not set: defaulting to a blank string|services\.\S+\.ports are not published: .+|services\.\S+\.x-hoist is read only for the routed service .+|no service takes the environment.s traffic .+)$/;

  /** `FILE[:LINE]: `, the file being the one read or one it includes or extends. */
  const WHERE = /^[\w .@/-]+\.ya?ml(:\d+)?: /;

  const check = (f: string, r: Awaited<ReturnType<typeof readApp>>) => {
    if (r.ok) {
      expect(r.spec.unrouted ? r.spec.app!.services.length : r.spec.port).toBeGreaterThan(0);
      for (const w of r.warnings) {
        expect(w, f).toMatch(WHERE);
        expect(w.replace(WHERE, "")).toMatch(WARNING);
      }
    } else {
      expect(Object.keys(REFUSALS)).toContain(r.reason);
      expect(r.error, f).toMatch(WHERE);
      expect(r.error.length).toBeLessThan(2_000);
    }
    return r.ok ? "accepted" : r.reason;
  };

  it("never crashes; each app, and each service alone, is accepted or refused with a documented reason (README: the counts)", async () => {
    expect(files.length).toBe(298);
    const apps: Record<string, number> = {};
    const services: Record<string, number> = {};
    let released = 0;
    for (const f of files) {
      const text = readFileSync(join(dir, f), "utf8");
      const { repo, path } = sourceOf(f);
      const readFile = readerFor(repo);
      const app = await readApp(text, { file: path, readFile });
      const verdict = check(f, app);
      apps[verdict] = (apps[verdict] ?? 0) + 1;
      if (app.ok) released += (app.spec.unrouted ? 0 : 1) + (app.spec.app?.services.length ?? 0);
      const read = await readYamlFile(text, { file: f, limits: COMPOSE_FILE_LIMITS, merge: true });
      const all = read.ok && typeof read.value === "object" && read.value !== null ? (read.value as { services?: unknown }).services : undefined;
      for (const name of typeof all === "object" && all !== null ? Object.keys(all) : []) {
        const one = check(f, await readApp(text, { file: path, readFile, only: [name] }));
        services[one] = (services[one] ?? 0) + 1;
      }
    }
    // An app with no port to route is released as workers; refusals keep their reasons.
    expect(apps).toEqual({
      accepted: 201,
      "repository-path": 30,
      invalid: 17,
      "no-image": 8,
      "host-path": 8,
      "no-route": 7,
      "not-yet": 7,
      "several-builds": 6,
      "host-namespace": 5,
      "shared-container": 3,
      privileged: 2,
      "missing-secret": 3,
      "shared-volume": 1,
    });
    expect(released).toBe(318);
    expect(services).toEqual({
      accepted: 392,
      "repository-path": 49,
      invalid: 19,
      "no-image": 16,
      "host-namespace": 9,
      "not-yet": 8,
      "host-path": 7,
      "no-route": 3,
      "shared-container": 3,
      "several-builds": 2,
      privileged: 2,
      "missing-secret": 3,
      "shared-volume": 1,
    });
  });

  it("reads each file's builds, or refuses them with a documented reason; with an image per service, the apps that built several are released (README: the counts)", async () => {
    const builds: Record<string, number> = {};
    const apps: Record<string, number> = {};
    for (const f of files) {
      const text = readFileSync(join(dir, f), "utf8");
      const { repo, path } = sourceOf(f);
      const readFile = readerFor(repo);
      const r = await readBuilds(text, { file: path, prefix: "app", variables: {}, readFile });
      if (!r.ok) {
        expect(Object.keys(REFUSALS)).toContain(r.reason);
        expect(r.error, f).toMatch(WHERE);
        const verdict = /no service has a build: section/.test(r.error) ? "no build" : r.reason;
        builds[verdict] = (builds[verdict] ?? 0) + 1;
        continue;
      }
      for (const b of r.builds) expect(b.context.startsWith("/") || b.context.split("/").includes("..")).toBe(false);
      builds[r.builds.length > 1 ? "several images" : "one image"] = (builds[r.builds.length > 1 ? "several images" : "one image"] ?? 0) + 1;
      const services = Object.fromEntries(r.builds.flatMap((b) => b.services.map((s) => [s, `${b.image}:sha`])));
      const verdict = check(f, await readApp(text, { file: path, readFile, built: { image: "app:sha", services } }));
      apps[verdict] = (apps[verdict] ?? 0) + 1;
    }
    expect(builds).toEqual({ "no build": 198, "one image": 62, "several images": 16, "not-yet": 13, invalid: 7, "repository-path": 2 });
    expect(apps).toEqual({ accepted: 49, "repository-path": 22, "no-route": 3, "host-path": 1, "not-yet": 1, "shared-container": 1, invalid: 1 });
  });
});
