import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buildEngineOf, ConfigError, loadCliConfig, loadConfig, LOCAL_REGISTRY } from "../../lib/config.ts";
import { parseHoistFile } from "../../lib/pipeline/config.ts";
import { matchPushPipelines } from "../../lib/pipeline/triggers.ts";
import { resolveStages } from "../../lib/pipeline/resolve.ts";
import type { HoistFile } from "../../lib/pipeline/schema.ts";

const GOOD = `
pipelines:
  main:
    on: { push: { branches: [main, "release/*"] }, manual: true, schedule: "0 3 * * *" }
    stages:
      - build: { image: shop, args: { NODE_ENV: production, LEVEL: 3 } }
      - test: { run: "npm test", timeout: 120 }
      - push:
  review:
    on: { push: { branches: ["feature/**"] } }
    stages: [ { build: }, { test: { run: "make check" } } ]
  release:
    on: { push: { tags: ["v*"] } }
    stages: [ { build: { image: registry.example.com/team/shop } }, { push: {} } ]
`;

async function parsed(text: string): Promise<HoistFile> {
  const r = await parseHoistFile(text);
  if (!r.ok) throw new Error(r.error);
  return r.file;
}

describe("parseHoistFile", () => {
  it("reads pipelines, triggers and stages with defaults", async () => {
    const file = await parsed(GOOD);
    expect(Object.keys(file.pipelines)).toEqual(["main", "review", "release"]);
    expect(file.pipelines.main?.on.schedule).toEqual([{ cron: "0 3 * * *", only_if_new_commits: false }]);
    expect(file.pipelines.main?.stages[0]).toEqual({ build: { image: "shop", args: { NODE_ENV: "production", LEVEL: "3" } } });
    expect(file.pipelines.review?.stages[1]).toEqual({ test: { run: "make check", timeout: 600, env: {} } });
  });

  it.each([
    ["a type error", "pipelines:\n  main:\n    on: { push: true }\n    stages:\n      - build: {}\n      - test: { run: make, timeout: soon }\n", /^\.hoist\.yml:6: pipelines\.main\.stages\[1\]\.test\.timeout: .*number/],
    ["an unknown field", "pipelines:\n  main:\n    on: { push: true }\n    stages:\n      - build: { imag: x }\n", /^\.hoist\.yml:5: pipelines\.main\.stages\[0\]\.build: unknown field "imag"/],
    ["a missing field", "pipelines:\n  main:\n    stages: [ { build: {} } ]\n", /^\.hoist\.yml:2: pipelines\.main\.on: /],
    ["a test before any build", "pipelines:\n  main:\n    on: { push: true }\n    stages:\n      - test: { run: make }\n      - build: {}\n", /^\.hoist\.yml:5: pipelines\.main\.stages\[0\]: a test stage needs a build stage before it/],
    ["a tagged image", "pipelines:\n  m:\n    on: { manual: true }\n    stages: [ { build: { image: \"shop:latest\" } } ]\n", /^\.hoist\.yml:4: .*must not carry a tag/],
    ["a context outside the repository", "pipelines:\n  m:\n    on: { manual: true }\n    stages: [ { build: { context: ../other } } ]\n", /^\.hoist\.yml:4: pipelines\.m\.stages\[0\]\.build\.context: must be a relative path inside the repository/],
    ["a compose build with a Dockerfile of its own", "pipelines:\n  m:\n    on: { manual: true }\n    stages: [ { build: { compose: compose.yaml, dockerfile: Dockerfile } } ]\n", /^\.hoist\.yml:4: pipelines\.m\.stages\[0\]\.build\.dockerfile: comes from each service's build: section when the stage builds from compose: remove it/],
    ["a build's services without compose", "pipelines:\n  m:\n    on: { manual: true }\n    stages: [ { build: { services: [web] } } ]\n", /^\.hoist\.yml:4: pipelines\.m\.stages\[0\]\.build\.services: names services of a compose file: add compose:/],
    ["broken YAML", "pipelines:\n  main:\n    on: [push\n", /^\.hoist\.yml:\d+: invalid YAML/],
    ["an empty file", "", /^\.hoist\.yml:1: \(file\): /],
    ["no pipelines", "pipelines: {}\n", /declare at least one pipeline/],
  ])("rejects %s with the line and the field", async (_name, text, expected) => {
    const r = await parseHoistFile(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(expected);
  });
});

describe("matchPushPipelines", () => {
  const file = parsed(GOOD);
  it.each([
    [{ branch: "main" }, ["main"]],
    [{ branch: "release/2.0" }, ["main"]],
    [{ branch: "feature/a/b" }, ["review"]],
    [{ branch: "other" }, []],
    [{ tag: "v1.2.3" }, ["release"]],
    [{ tag: "nightly" }, []],
  ])("%o starts %o", async (ref, names) => {
    expect(matchPushPipelines(await file, ref)).toEqual(names);
  });

  it("push: true and push: {} match branches and tags; manual-only never matches a push", async () => {
    const f = await parsed("pipelines:\n  a: { on: { push: true }, stages: [ { build: } ] }\n  b: { on: { push: {} }, stages: [ { build: } ] }\n  c: { on: { manual: true }, stages: [ { build: } ] }\n");
    expect(matchPushPipelines(f, { branch: "x" })).toEqual(["a", "b"]);
    expect(matchPushPipelines(f, { tag: "v1" })).toEqual(["a", "b"]);
  });
});

describe("resolveStages", () => {
  const file = parsed(GOOD);
  it("names images after the repo and pushes to the server's registry", async () => {
    const r = resolveStages((await file).pipelines.review!, { repoName: "acme/Shop_App", registry: "127.0.0.1:5000" });
    expect(r).toEqual({
      ok: true,
      stages: [
        { name: "build", spec: { kind: "build", image: "shop_app", context: ".", dockerfile: "Dockerfile", args: {} } },
        { name: "test", spec: { kind: "test", run: "make check", timeoutSec: 600, env: {} } },
      ],
    });
  });

  it("pushes an image that names its registry there", async () => {
    const r = resolveStages((await file).pipelines.release!, { repoName: "acme/shop" });
    expect(r.ok && r.stages[1]?.spec).toEqual({ kind: "push", target: "registry.example.com/team/shop" });
  });

  it("builds each service of a compose file, and pushes them all to the registry", async () => {
    const f = await parsed("pipelines:\n  m:\n    on: { manual: true }\n    stages:\n      - build: { compose: [compose.yaml, compose.prod.yaml], services: [web, api] }\n      - push:\n");
    expect(resolveStages(f.pipelines.m!, { repoName: "acme/shop", registry: "127.0.0.1:5000" })).toEqual({
      ok: true,
      stages: [
        { name: "build", spec: { kind: "build", image: "shop", context: ".", dockerfile: "Dockerfile", args: {}, compose: "compose.yaml", overrides: ["compose.prod.yaml"], services: ["web", "api"] } },
        { name: "push", spec: { kind: "push", target: "127.0.0.1:5000/shop", registry: "127.0.0.1:5000" } },
      ],
    });
  });

  it("uses HOIST_REGISTRY for a bare image and fails clearly without one", async () => {
    const { pipelines } = await file;
    expect(resolveStages(pipelines.main!, { repoName: "acme/shop", registry: "127.0.0.1:5000" })).toMatchObject({
      ok: true,
      stages: [{ name: "build" }, { name: "test" }, { name: "push", spec: { target: "127.0.0.1:5000/shop", registry: "127.0.0.1:5000" } }],
    });
    const r = resolveStages(pipelines.main!, { repoName: "acme/shop" });
    expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/names no registry; set push.registry or HOIST_REGISTRY/) });
  });
});

describe("lib/config.ts", () => {
  it("parses the service's settings with their defaults, and names each bad variable", () => {
    const config = loadConfig({ HOIST_PORT: "9090", GITHUB_WEBHOOK_SECRET: "0123456789abcdef, fedcba9876543210" });
    expect(config).toMatchObject({ HOIST_PORT: 9090, HOIST_BUILDER_IMAGE: "hoist/builder:latest", HOIST_LOG_LEVEL: "info" });
    expect(config.GITHUB_WEBHOOK_SECRET).toEqual(["0123456789abcdef", "fedcba9876543210"]);
    expect(() => loadConfig({ HOIST_PORT: "99999", HOIST_API_TOKEN: "short" })).toThrow(/HOIST_PORT: [\s\S]*HOIST_API_TOKEN: HOIST_API_TOKEN must be at least 16 characters/);
  });

  it("parses the command line's settings: one builder-image default, the local registry, an empty variable as unset", () => {
    const cli = loadCliConfig({ NO_COLOR: "1", GITHUB_WEBHOOK_SECRET: " first-secret-0123 ,second" });
    expect(cli).toMatchObject({ NO_COLOR: true, HOIST_REGISTRY: LOCAL_REGISTRY, GITHUB_WEBHOOK_SECRET: ["first-secret-0123", "second"] });
    expect(cli.HOIST_BUILDER_IMAGE).toBe(loadConfig({}).HOIST_BUILDER_IMAGE);
    expect(cli.HOIST_URL).toBeUndefined();
    expect(cli.HOIST_LOG_LEVEL).toBeUndefined();
    expect(loadCliConfig({ NO_COLOR: "" }).NO_COLOR).toBe(false);
    const blank = loadCliConfig({ HOIST_URL: "", HOIST_REGISTRY: "" });
    expect([blank.HOIST_URL, blank.HOIST_REGISTRY]).toEqual([undefined, LOCAL_REGISTRY]);
    expect(() => loadCliConfig({ HOIST_URL: "localhost:8080" })).toThrow(ConfigError);
    expect(() => loadCliConfig({ HOIST_URL: "nope" })).toThrow(/HOIST_URL: must be an http:\/\/ or https:\/\/ URL/);
  });

  it("takes the builder's engine with the same forms and checks as an environment's (HOIST_BUILD_ENGINE*)", () => {
    expect(buildEngineOf(loadConfig({}))).toEqual({ endpoint: "unix:///var/run/docker.sock" });
    expect(buildEngineOf(loadConfig({ DOCKER_HOST: "tcp://127.0.0.1:2375" }))).toEqual({ endpoint: "tcp://127.0.0.1:2375" });
    const tls = { HOIST_BUILD_ENGINE_TLS_CA: "/ca.pem", HOIST_BUILD_ENGINE_TLS_CERT: "/cert.pem", HOIST_BUILD_ENGINE_TLS_KEY: "/key.pem" };
    expect(buildEngineOf(loadConfig({ HOIST_BUILD_ENGINE: "tcp://builder.example.com:2376", DOCKER_HOST: "unix:///other.sock", ...tls }))).toEqual({
      endpoint: "tcp://builder.example.com:2376",
      tls: { ca: "/ca.pem", cert: "/cert.pem", key: "/key.pem" },
    });
    const fingerprint = `SHA256:${"A".repeat(43)}`;
    expect(buildEngineOf(loadConfig({ HOIST_BUILD_ENGINE: "ssh://deploy@builder", HOIST_BUILD_ENGINE_SSH_KEY: "/id", HOIST_BUILD_ENGINE_SSH_HOST_KEY: fingerprint })).ssh).toEqual({ key: "/id", hostKey: fingerprint });
    // Refused at start, naming the variable: what would hand the builder to anyone on the way.
    expect(() => loadConfig({ HOIST_BUILD_ENGINE: "tcp://builder.example.com:2375" })).toThrow(/HOIST_BUILD_ENGINE_TLS: a tcp:\/\/ engine on another host needs tls/);
    expect(() => loadConfig({ HOIST_BUILD_ENGINE: "ssh://deploy@builder" })).toThrow(/HOIST_BUILD_ENGINE_SSH: an ssh:\/\/ engine needs ssh/);
    expect(() => loadConfig({ HOIST_BUILD_ENGINE: "ssh://deploy@builder", HOIST_BUILD_ENGINE_SSH_KEY: "/id", HOIST_BUILD_ENGINE_SSH_HOST_KEY: "md5:xx" })).toThrow(/HOIST_BUILD_ENGINE_SSH_HOST_KEY: is the host key's fingerprint/);
    expect(() => loadConfig({ HOIST_BUILD_ENGINE: "http://builder" })).toThrow(/HOIST_BUILD_ENGINE: is unix:\/\/\/path\/docker.sock, tcp:\/\/host:port or ssh:\/\/user@host/);
    expect(() => loadConfig({ HOIST_BUILD_ENGINE: "unix:///x.sock", ...tls })).toThrow(/HOIST_BUILD_ENGINE_TLS: tls applies to a tcp:\/\/ engine only/);
  });

  it("is the only file under lib/, functions/ and scripts/ that names process.env", async () => {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const files = (await Promise.all(["lib", "functions", "scripts"].map((dir) => readdir(join(root, dir), { recursive: true })))).flatMap((names, i) =>
      names.filter((n) => /\.(ts|mts|mjs|js)$/.test(n)).map((n) => join(["lib", "functions", "scripts"][i]!, n)),
    );
    const naming = [];
    for (const file of files) if ((await readFile(join(root, file), "utf8")).includes("process.env")) naming.push(file);
    expect(files.length).toBeGreaterThan(20);
    expect(naming).toEqual(["lib/config.ts"]);
  });
});
