import { describe, expect, it } from "vitest";
import { parseHoistFile } from "../../lib/pipeline/config.ts";
import { resolveStages } from "../../lib/pipeline/resolve.ts";
import { Environment, parseEnvironmentsFile, protectionDenies } from "../../lib/release/environment.ts";
import { gateRule } from "../../lib/runs/gate.ts";
import { readReleaseSpec } from "../../lib/compose/app.ts";
import { httpHealthcheck } from "../../lib/release/in-place.ts";
import { setName } from "../../lib/release/moves.ts";
import type { ReleaseContext } from "../../lib/release/ports.ts";
import { canarySize, canaryWeights } from "../../lib/release/canary.ts";

describe("canary weights", () => {
  it("give the canary set the step's share of the traffic next to the stable set", () => {
    // Stable sets of `replicas`, canary sets sized as releases size them.
    for (const stable of [1, 2, 3, 5, 10, 20])
      for (const step of [1, 10, 25, 50, 90, 99]) {
        const canaries = canarySize(step, stable);
        const w = canaryWeights(step, stable, canaries);
        const share = (100 * canaries * w.canary) / (canaries * w.canary + stable * w.stable);
        expect(Math.abs(share - step), `step ${step}, ${canaries} canaries, ${stable} stable`).toBeLessThan(1.5);
        expect(Math.max(w.canary, w.stable)).toBeLessThanOrEqual(256);
        expect(Math.min(w.canary, w.stable)).toBeGreaterThanOrEqual(1);
      }
  });

  it("size the canary set to its share of the replicas, at least one", () => {
    expect([10, 50, 100].map((step) => canarySize(step, 2))).toEqual([1, 1, 2]);
    expect([10, 25, 50, 100].map((step) => canarySize(step, 10))).toEqual([1, 3, 5, 10]);
    expect(canarySize(1, 1)).toBe(1);
  });
});

describe("deploy stages in .hoist.yml", () => {
  const file = (stages: string) => `pipelines:\n  main:\n    on: { push: true }\n    stages:\n${stages}`;

  it("resolve with their defaults and overrides", async () => {
    const parsed = await parseHoistFile(
      file(
        "      - build: { image: shop }\n      - deploy: { environment: staging }\n      - deploy: { environment: production, strategy: canary, service: web, compose: deploy/compose.yml }\n" +
          "      - deploy: { environment: edge, compose: [compose.yaml, compose.prod.yaml], services: [web], profiles: [jobs] }\n",
      ),
    );
    if (!parsed.ok) throw new Error(parsed.error);
    const resolved = resolveStages(parsed.file.pipelines.main!, { repoName: "acme/shop" });
    expect(resolved).toEqual({
      ok: true,
      stages: [
        { name: "build", spec: { kind: "build", image: "shop", context: ".", dockerfile: "Dockerfile", args: {} } },
        { name: "deploy", spec: { kind: "deploy", environment: "staging", compose: "docker-compose.yml" } },
        { name: "deploy-2", spec: { kind: "deploy", environment: "production", compose: "deploy/compose.yml", service: "web", strategy: "canary" } },
        { name: "deploy-3", spec: { kind: "deploy", environment: "edge", compose: "compose.yaml", overrides: ["compose.prod.yaml"], services: ["web"], profiles: ["jobs"] } },
      ],
    });
  });

  it("need a build before them, a valid environment name and a known strategy", async () => {
    const early = await parseHoistFile(file("      - deploy: { environment: staging }\n      - build: {}\n"));
    expect(early.ok ? "" : early.error).toMatch(/\.hoist\.yml:5: pipelines\.main\.stages\[0\]: a deploy stage needs a build stage before it/);
    const name = await parseHoistFile(file("      - build: {}\n      - deploy: { environment: Prod }\n"));
    expect(name.ok ? "" : name.error).toMatch(/\.hoist\.yml:6: pipelines\.main\.stages\[1\]\.deploy\.environment: is an environment name/);
    const strategy = await parseHoistFile(file("      - build: {}\n      - deploy: { environment: prod, strategy: yolo }\n"));
    expect(strategy.ok ? "" : strategy.error).toMatch(/stages\[1\]\.deploy\.strategy: Invalid option/);
    const outside = await parseHoistFile(file("      - build: {}\n      - deploy: { environment: prod, compose: ../x.yml }\n"));
    expect(outside.ok ? "" : outside.error).toMatch(/compose: must be a relative path inside the repository/);
  });
});

describe("environments", () => {
  const base = { name: "production", engine: { endpoint: "unix:///var/run/docker.sock" }, router: { admin: "unix:///run/haproxy.sock", backend: "web" } };

  const shop = (branch?: string) => ({ repo: { provider: "github", fullName: "acme/shop" }, branch });

  it("protection rules allow only the listed branches, and never a tag when branches are set", () => {
    const env = Environment.parse({ ...base, protection: { branches: ["main", "release/*"] } });
    expect(protectionDenies(env, shop("main"))).toBeUndefined();
    expect(protectionDenies(env, shop("release/1.2"))).toBeUndefined();
    expect(protectionDenies(env, shop("feature/x"))).toBe("environment production accepts releases only from main, release/*; this run is on feature/x");
    expect(protectionDenies(env, shop())).toMatch(/this run is on a tag/);
    expect(protectionDenies(Environment.parse(base), shop("anything"))).toBeUndefined();
  });

  it("protection rules allow only the listed repositories: another repository's .hoist.yml cannot release here", () => {
    const env = Environment.parse({ ...base, protection: { repos: ["github:acme/shop", "gitlab:acme/*"] } });
    expect(protectionDenies(env, shop("main"))).toBeUndefined();
    expect(protectionDenies(env, { repo: { provider: "gitlab", fullName: "acme/web" }, branch: "main" })).toBeUndefined();
    expect(protectionDenies(env, { repo: { provider: "github", fullName: "mallory/shop" }, branch: "main" })).toBe(
      "environment production accepts releases only from github:acme/shop, gitlab:acme/*; this run is of github:mallory/shop",
    );
    expect(protectionDenies(env, { repo: { provider: "gitlab", fullName: "acme/sub/web" }, branch: "main" })).toMatch(/this run is of gitlab:acme\/sub\/web/);
    expect(Environment.safeParse({ ...base, protection: { repos: ["acme/shop"] } }).success).toBe(false);
  });

  it("a required approval is asked of every run's deploy stage, whatever its .hoist.yml says, and the stricter rule wins", async () => {
    const env = Environment.parse({ ...base, protection: { branches: ["main"], approval: { required: true, approvers: ["alice", "bob"], count: 2, selfApproval: false } } });
    expect(protectionDenies(env, shop("main"))).toBeUndefined();
    const environments = { getEnvironment: async (name: string) => (name === env.name ? env : undefined), putEnvironment: async () => {}, listEnvironments: async () => [env] };
    const deploy = { kind: "deploy" as const, environment: "production", compose: "docker-compose.yml" };
    expect(await gateRule(environments, deploy, 1000)).toEqual({ rule: { approvers: ["alice", "bob"], count: 2, expiresAt: 1000 + 86_400_000, selfApproval: false, from: ["environment production"] } });
    // A file asking for less (one approval, anyone, self-approval on) cannot lower the environment's rule.
    const lenient = { ...deploy, approval: { approvers: [], count: 1, timeoutSec: 600, selfApproval: true } };
    expect(await gateRule(environments, lenient, 1000)).toEqual({ rule: { approvers: ["alice", "bob"], count: 2, expiresAt: 601_000, selfApproval: false, from: [".hoist.yml", "environment production"] } });
    expect(await gateRule(environments, { ...deploy, environment: "staging" }, 1000)).toEqual({});
    const notRequired = Environment.parse({ ...base, protection: { approval: { required: false } } });
    expect(await gateRule({ ...environments, getEnvironment: async () => notRequired }, deploy, 1000)).toEqual({});
  });

  it("validate engine and router addresses, and store approval rules with defaults", () => {
    expect(Environment.safeParse({ ...base, engine: { endpoint: "http://x" } }).success).toBe(false);
    expect(Environment.safeParse({ ...base, router: { admin: "haproxy:9999", backend: "web" } }).success).toBe(false);
    const refused = (engine: object, router = base.router) => {
      const r = Environment.safeParse({ ...base, engine, router });
      return r.success ? "accepted" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    };
    expect(refused({ endpoint: "tcp://h:99999" })).toMatch(/engine.endpoint: is not a valid address/);
    expect(refused({ endpoint: "ssh://deploy:hunter2@host", ssh: { key: "/k", hostKey: `SHA256:${"x".repeat(43)}` } })).toMatch(/must not hold a password/);
    expect(refused({ endpoint: "tcp://10.0.0.5:2375" })).toMatch(/engine.tls: a tcp:\/\/ engine on another host needs tls/);
    expect(refused({ endpoint: "tcp://127.0.0.1:2375" })).toBe("accepted");
    expect(refused({ endpoint: "unix:///var/run/docker.sock", tls: { ca: "a", cert: "b", key: "c" } })).toMatch(/engine.tls: tls applies to a tcp:\/\/ engine only/);
    expect(refused(base.engine, { admin: "tcp://haproxy", backend: "web" })).toMatch(/router.admin: is the HAProxy runtime API/);
    const ssh = { key: "/etc/hoist/deploy_key", hostKey: `SHA256:${"x".repeat(43)}` };
    expect(Environment.safeParse({ ...base, engine: { endpoint: "ssh://deploy@host", ssh: { ...ssh, hostKey: "d4:1f:aa" } } }).success).toBe(false);
    expect(Environment.parse({ ...base, engine: { endpoint: "ssh://deploy@host", ssh }, protection: { approval: { required: true } } })).toMatchObject({
      mode: "docker",
      protection: { approval: { required: true, approvers: [] } },
    });
  });

  it("load from the local runtime's file, naming the file and the field on a mistake", () => {
    const text = `environments:\n  - name: staging\n    engine: { endpoint: "unix:///var/run/docker.sock" }\n    router: { admin: "tcp://127.0.0.1:9999", backend: app }\n    mode: swarm\n`;
    expect(parseEnvironmentsFile(text, "envs.yml")).toMatchObject([{ name: "staging", mode: "swarm" }]);
    expect(() => parseEnvironmentsFile(text.replace("swarm", "kubernetes"), "envs.yml")).toThrow(/^envs\.yml: environments\.0\.mode: /);
    expect(() => parseEnvironmentsFile("environments: [", "envs.yml")).toThrow(/^envs\.yml: invalid YAML/);
  });
});

describe("release sets", () => {
  const spec = async (service: string, health = {}) => {
    const parsed = await readReleaseSpec(
      `services:\n  ${service}:\n    ports: ["8080"]\n    x-hoist: { health: ${JSON.stringify({ path: "/healthz", ...health })} }\n`,
      service,
    );
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.spec;
  };
  const ctx = (env: string) => ({ env }) as ReleaseContext;

  it("are named hoist-<env>-<service>-<release>, cut to Swarm's 63 characters with the release id whole", async () => {
    const id = "01m80ss2z1q9wqystdyrkaa7nx";
    expect(setName(ctx("prod"), { id, image: "x", spec: await spec("web"), live: [] })).toBe(`hoist-prod-web-${id}`);
    const long = setName(ctx("zd-s-blue-green-y87vut8i-r1"), { id, image: "x", spec: await spec("Web_API"), live: [] });
    expect(long).toHaveLength(63);
    expect(long).toBe(`hoist-zd-s-blue-green-y87vut8i-r1-we-${id}`);
  });

  it("get the x-hoist HTTP check as a container health check for Swarm's rolling update, at most once a second", async () => {
    const plan = async (health: object) => ({ id: "r", image: "x", spec: await spec("web", health), live: [] });
    const fast = httpHealthcheck(await plan({ interval: "200ms", retries: 10, timeout: "2s" }));
    expect(fast.test).toEqual(["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/healthz || curl -fsS -o /dev/null http://127.0.0.1:8080/healthz"]);
    // The same patience (10 x 200 ms), in fewer execs.
    expect(fast).toMatchObject({ intervalMs: 1_000, retries: 2, timeoutMs: 2_000, startPeriodMs: 0 });
    expect(httpHealthcheck(await plan({ interval: "5s", retries: 3 }))).toMatchObject({ intervalMs: 5_000, retries: 3 });
  });
});
