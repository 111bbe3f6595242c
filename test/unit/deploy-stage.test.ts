import { describe, expect, it } from "vitest";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import type { StageSpec } from "../../lib/pipeline/run.ts";
import { Environment } from "../../lib/release/environment.ts";
import type { ReleaseSpec } from "../../lib/release/spec.ts";
import type { VariableValue } from "../../lib/release/variables.ts";
import { deployStage } from "../../lib/runs/deploy.ts";
import { FakeSource } from "../support/memory.ts";
import { fakeEnvironment } from "../support/release-fakes.ts";
import { makeRun } from "../support/runs.ts";

/**
 * The deploy stage between what the server keeps for an environment (its variables, what it
 * allows) and the repository at the run's sha, and the release it makes of them.
 */

const lines = (...l: string[]) => l.join("\n") + "\n";

/** The repository: its files at the run's sha, none at any other commit; and what was read. */
class Repository extends FakeSource {
  readonly read: string[] = [];
  constructor(
    private readonly sha: string,
    files: Record<string, string>,
  ) {
    super(files);
  }
  override async readFile(repo: RepoRef, sha: string, path: string): Promise<string | undefined> {
    this.read.push(path);
    return sha === this.sha ? super.readFile(repo, sha, path) : undefined;
  }
}

interface Setup {
  files: Record<string, string>;
  /** The environment's variables (`hoist env vars set`). */
  variables?: Omit<VariableValue, "version">[];
  allow?: { hostPaths?: boolean; privileged?: boolean };
  stage?: Partial<Extract<StageSpec, { kind: "deploy" }>>;
}

/** Runs a deploy stage of a run that built shop:v1, to the environment `prod` on in-memory ports. */
async function deploy({ files, variables = [], allow = {}, stage = {} }: Setup) {
  const e = fakeEnvironment();
  for (const i of ["shop:v1", "postgres:16"]) e.host.images.add(i);
  await e.store.putEnvironment(Environment.parse({ name: "prod", engine: { endpoint: "unix:///var/run/docker.sock" }, router: { admin: "unix:///run/haproxy.sock", backend: e.ctx.backend }, allow }));
  const spec: Extract<StageSpec, { kind: "deploy" }> = { kind: "deploy", environment: "prod", compose: "docker-compose.yml", ...stage };
  const run = makeRun([spec], { image: "shop:v1" });
  const source = new Repository(run.sha, files);
  const values = variables.map((v, i) => ({ ...v, version: `v${i}` }));
  const log: string[] = [];
  const result = await deployStage(
    {
      store: e.store,
      source,
      now: () => e.clock.now(),
      leaseMs: e.deps.leaseMs,
      // As the server wires it: a release reads the values its secrets' files hold.
      contextFor: (_env, log) => ({ ...e.ctx, log, variables: async () => new Map(values.map((v) => [v.name, v.value])) }),
      variables: { variableValues: async (env) => (env === "prod" ? values : []) },
    },
    run,
    0,
    spec,
    { log: (l) => log.push(l) },
  );
  const record = "release" in result && result.release ? await e.store.getRelease("prod", result.release) : undefined;
  /** The instance of `service` that runs now. */
  const running = (service: string) => [...e.host.instances.values()].find((i) => i.running && i.labels["hoist.service"] === service);
  return { e, result, log, source, record, released: record?.spec as ReleaseSpec | undefined, running };
}

describe("the environment's variables in the compose file", () => {
  const compose = lines(
    "services:", // 1
    "  web:", // 2
    "    build: .", // 3
    "    ports: ['8080']", // 4
    "    environment: { LEVEL: '${LEVEL}', REGION: '${REGION}' }", // 5
    "    secrets: [db_password]", // 6
    "secrets:", // 7
    "  db_password: { environment: DB_PASSWORD }", // 8
  );
  const variables = [
    { name: "LEVEL", value: "info", secret: false },
    { name: "DB_PASSWORD", value: "s3cret-value", secret: true },
  ];

  it("fill in ${KEY}, over the repository's .env", async () => {
    const { result, released } = await deploy({ files: { "docker-compose.yml": compose, ".env": "LEVEL=debug\nREGION=eu\n" }, variables });
    expect(result).toMatchObject({ ok: true });
    expect(released?.environment).toEqual({ LEVEL: "info", REGION: "eu" });
  });

  it("a secret one reaches the container only as its file: it is in no spec, record, log line or container setting", async () => {
    const { result, record, running, log } = await deploy({ files: { "docker-compose.yml": compose, ".env": "REGION=eu\n" }, variables });
    expect(result).toMatchObject({ ok: true });
    const web = running("web")!;
    expect(web.spec.files).toEqual([{ path: "/run/secrets/db_password", content: "s3cret-value", mode: 0o444, uid: 0, gid: 0 }]);
    expect(JSON.stringify({ ...web.spec, files: undefined })).not.toContain("s3cret-value");
    expect(JSON.stringify(record)).not.toContain("s3cret-value");
    expect(log.length).toBeGreaterThan(0);
    expect(log.join("\n")).not.toContain("s3cret-value");
  });

  it("a secret one is never interpolated: ${KEY} of it fails the stage, naming the line and the way to use it, before anything runs", async () => {
    const leaky = compose.replace("REGION: '${REGION}'", "PASSWORD: '${DB_PASSWORD}'");
    const { e, result } = await deploy({ files: { "docker-compose.yml": leaky }, variables });
    expect(result).toEqual({
      ok: false,
      error: 'docker-compose.yml:5: "DB_PASSWORD" is a secret of this environment: a secret reaches a container only as a file, through secrets: (secrets: { db_password: { environment: DB_PASSWORD } })',
    });
    expect(await e.store.listReleases("prod")).toEqual([]);
    expect(e.host.instances.size).toBe(0);
    // Nor does the repository's .env stand in for it: the environment's variable is the one that counts.
    const shadowed = await deploy({ files: { "docker-compose.yml": leaky, ".env": "DB_PASSWORD=dev-password\n" }, variables });
    expect(shadowed.result).toMatchObject({ ok: false, error: expect.stringMatching(/^docker-compose\.yml:5: "DB_PASSWORD" is a secret of this environment/) });
  });

  it("fill in a health check's duration, which the release reads as a number", async () => {
    const text = lines(
      "services:",
      "  web:",
      "    build: .",
      "    ports: ['8080']",
      "    healthcheck:",
      "      test: ['CMD', 'true']",
      "      interval: ${HC_INTERVAL:-5s}",
      "  db:",
      "    image: postgres:16",
      "    healthcheck: { test: ['CMD', 'pg_isready'], interval: '${HC_INTERVAL:-5s}', timeout: '${HC_TIMEOUT}' }",
    );
    const byDefault = await deploy({ files: { "docker-compose.yml": text, ".env": "HC_TIMEOUT=1500ms\n" } });
    expect(byDefault.released?.healthcheck?.intervalMs).toBe(5_000);
    expect(byDefault.released?.app?.services[0]?.healthcheck).toMatchObject({ intervalMs: 5_000, timeoutMs: 1_500 });
    const set = await deploy({ files: { "docker-compose.yml": text, ".env": "HC_TIMEOUT=1500ms\n" }, variables: [{ name: "HC_INTERVAL", value: "1m30s", secret: false }] });
    expect(set.released?.healthcheck?.intervalMs).toBe(90_000);
    expect(set.released?.app?.services[0]?.healthcheck?.intervalMs).toBe(90_000);
  });
});

describe("host paths and privileges, as the environment allows them", () => {
  /** web, and a companion with `settings`. */
  const withAgent = (...settings: string[]) =>
    lines("services:", "  web:", "    build: .", "    ports: ['8080']", "  agent:", "    image: postgres:16", ...settings.map((s) => `    ${s}`));

  it("a bind mount of a host path is released where the environment allows host paths, and refused where it does not", async () => {
    const files = { "docker-compose.yml": withAgent("volumes: ['/srv/data:/data:ro']") };
    const allowed = await deploy({ files, allow: { hostPaths: true } });
    expect(allowed.result).toMatchObject({ ok: true });
    expect(allowed.running("agent")?.spec.runtime?.mounts).toEqual([{ type: "bind", source: "/srv/data", target: "/data", readOnly: true }]);
    const refused = await deploy({ files });
    expect(refused.result).toEqual({
      ok: false,
      error: "docker-compose.yml:7: services.agent.volumes: /srv/data is a host path, and this environment does not allow host paths: use a named volume, or allow host paths on the environment (`hoist env set --allow-host-paths`)",
    });
    expect(refused.e.host.instances.size).toBe(0);
  });

  it("a privileged service is released where the environment allows privileges, and refused where it does not", async () => {
    const files = { "docker-compose.yml": withAgent("privileged: true") };
    const allowed = await deploy({ files, allow: { privileged: true } });
    expect(allowed.result).toMatchObject({ ok: true });
    expect(allowed.running("agent")?.spec.runtime?.privileged).toBe(true);
    const refused = await deploy({ files, allow: { hostPaths: true } });
    expect(refused.result).toEqual({
      ok: false,
      error: "docker-compose.yml:7: services.agent.privileged: this environment does not allow privileges: drop privileged, or allow them on the environment (`hoist env set --allow-privileged`)",
    });
  });
});

describe("several compose files (the stage's compose: list)", () => {
  it("are read at the run's sha and merged in order, as docker compose -f a -f b does", async () => {
    const files = {
      "deploy/compose.yaml": lines("services:", "  web:", "    build: .", "    ports: ['8080']", "    environment: { LEVEL: debug, KEEP: 'yes' }", "    deploy: { replicas: 1 }"),
      "deploy/compose.prod.yaml": lines("services:", "  web:", "    environment: { LEVEL: info }", "    deploy: { replicas: 2 }", "  db:", "    image: postgres:16"),
    };
    const { result, released, source } = await deploy({ files, stage: { compose: "deploy/compose.yaml", overrides: ["deploy/compose.prod.yaml"] } });
    expect(result).toMatchObject({ ok: true });
    expect(source.read).toEqual(["deploy/compose.yaml", "deploy/.env", "deploy/compose.prod.yaml"]);
    expect(released).toMatchObject({ environment: { LEVEL: "info", KEEP: "yes" }, replicas: 2 });
    expect(released?.app?.services.map((s) => s.name)).toEqual(["db"]);
  });

  it("a file of the list missing at the run's sha fails the stage, naming it", async () => {
    const { result } = await deploy({ files: { "compose.yaml": lines("services:", "  web: { build: ., ports: ['8080'] }") }, stage: { compose: "compose.yaml", overrides: ["compose.prod.yaml"] } });
    expect(result).toEqual({ ok: false, error: "compose.prod.yaml (in the stage's compose list) not found in acme/shop at 0123456789ab" });
  });
});
