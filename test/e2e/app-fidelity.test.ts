import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readApp } from "../../lib/compose/app.ts";
import { commitAll } from "../../lib/demo/sample-app.ts";
import type { RepoRef } from "../../lib/pipeline/refs.ts";
import type { ReleaseContext } from "../../lib/release/ports.ts";
import { release } from "../../lib/release/release.ts";
import type { ReleaseSpec } from "../../lib/release/spec.ts";
import { LocalGitReader } from "../../lib/scm/local.ts";
import { execIn, makeContext, readContainerFile } from "../support/docker.ts";
import { hostModes, trigger, useReleaseBench, type ReleaseBench } from "../support/releases.ts";
import { waitFor } from "../support/wait.ts";

// Compose keys beyond services and images, on a real engine (issue 10, "Networks and names",
// "Variables and secrets", "labels reach the containers"): a routed web on two declared networks,
// a cache only on the back one and an edge only on the front one, reaching each other by name and
// alias and not across; labels, tmpfs, env_file read from the repository at the released sha, and
// a secret set on the server that reaches the containers as a file and nothing else.
const file = useReleaseBench();
let docker: Dockerode;
let bench: ReleaseBench;
beforeAll(() => {
  ({ docker, bench } = file());
});

/** The secret's value: random, so finding it anywhere means it leaked. */
const SECRET = `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`;

const composeFile = (image: string) => `services:
  web:
    build: .
    ports: ["8080"]
    deploy: { replicas: 1 }
    # UPSTREAM: the app's /db asks the cache's /count, by the cache's alias on the back network.
    environment: { UPSTREAM: "kv:8080", MODE: from-environment }
    env_file: [common.env, web.env]
    labels: { com.example.app: fidelity, com.example.role: web }
    tmpfs: ["/scratch:size=1m"]
    networks:
      front: { aliases: [www] }
      back:
    secrets: [api_token]
    depends_on: [cache, edge]
    x-hoist:
      strategy: blue-green
      health: { path: /healthz, status: 200, interval: 200ms, retries: 20 }
  cache:
    image: ${image}
    # The counter lives in the tmpfs: a worker, with no named volume.
    environment: { COUNTER_FILE: /scratch/count }
    env_file: common.env
    labels: ["com.example.app=fidelity", "com.example.role=cache"]
    tmpfs: /scratch
    networks:
      back: { aliases: [kv] }
    secrets: [{ source: api_token, target: token, mode: 0400 }]
  edge:
    image: ${image}
    labels: { com.example.app: fidelity, com.example.role: edge }
    networks:
      front: { aliases: [gateway] }
networks:
  front: {}
  back: {}
secrets:
  api_token: { environment: API_TOKEN }
`;

/** The running container of `service` in `env` (on Swarm, its task's): one replica each here. */
async function containerOf(env: string, service: string): Promise<Dockerode.ContainerInspectInfo> {
  const found = await docker.listContainers({ filters: { label: [`hoist.env=${env}`, `hoist.service=${service}`], status: ["running"] } });
  expect(found.length, `running containers of ${service}`).toBe(1);
  return docker.getContainer(found[0]!.Id).inspect();
}

/**
 * What `name` resolves to inside `container`, asked of the engine's DNS with busybox nslookup
 * (the image's wget cannot resolve names: a static busybox): its IPv4 addresses, or "NXDOMAIN"
 * when the engine says there is no such name there (not a timeout or a broken tool).
 */
async function resolveIn(container: string, name: string): Promise<string[] | "NXDOMAIN"> {
  const { code, out } = await execIn(docker, container, ["nslookup", name]);
  if (code === 0) return [...out.matchAll(/^Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => m[1]!);
  if (/NXDOMAIN/.test(out)) return "NXDOMAIN";
  throw new Error(`nslookup ${name} in ${container} exited ${code}: ${out}`);
}

/** The container's address on one of its networks. */
const addressOn = (c: Dockerode.ContainerInspectInfo, network: string) => c.NetworkSettings.Networks[network]?.IPAddress;

describe.each(hostModes(() => docker))("a compose app's networks, labels, tmpfs, env_file and secrets on %s", (mode, makeHost) => {
  let ctx: ReleaseContext;
  let url: string;
  let log: string[];
  let repoDir: string;
  const net = (name: string) => `hoist-${ctx.env}-${name}`;

  beforeAll(async () => {
    ({ ctx, url, log } = await bench.environment(mode === "Swarm" ? "sfid" : "fid", await makeHost()));
    // Set on the server as `hoist env vars set ENV API_TOKEN --secret --value-stdin` does.
    await bench.variables.putVariable(ctx.env, "API_TOKEN", SECRET, true);
  });
  afterAll(async () => {
    if (repoDir) await rm(repoDir, { recursive: true, force: true });
  });

  /**
   * The app's release description as the deploy stage reads it (lib/runs/deploy.ts): the compose
   * file and what it names (env_file) from the repository at `sha`, the environment's variables
   * by name and version (a secret's value is read only when the release starts its containers).
   */
  async function specAt(repo: RepoRef, sha: string): Promise<ReleaseSpec> {
    const reader = new LocalGitReader({ allowLocalRepos: true });
    const readFile = (path: string) => reader.readFile(repo, sha, path);
    const text = await readFile("compose.yaml");
    expect(text).toBeDefined();
    const server = await bench.variables.listVariables(ctx.env);
    const read = await readApp(text!, {
      file: "compose.yaml",
      serverVariables: Object.fromEntries(server.map((v) => [v.name, { version: v.version, secret: v.secret }])),
      readFile,
      built: { image: bench.images.v1 },
    });
    if (!read.ok) throw new Error(read.error);
    return read.spec;
  }

  it("is released on its declared networks, each scoped to the environment (an attachable overlay on Swarm); web is on both, cache and edge on one each", async () => {
    repoDir = await makeContext({
      "compose.yaml": composeFile(bench.images.v1),
      "common.env": "TEAM=shop\nGREETING=from-common-env\n",
      "web.env": "GREETING=from-web-env\nMODE=from-env-file\n",
    });
    const first = await commitAll(repoDir, "main", "an app with networks, labels, tmpfs, env_file and a secret");
    // The repository moves on; the release reads the files at the sha it releases.
    await writeFile(join(repoDir, "web.env"), "GREETING=from-a-later-commit\n");
    await commitAll(repoDir, "main", "a later web.env");
    const repo: RepoRef = { provider: "github", fullName: "acme/fidelity", cloneUrl: repoDir };

    const done = await release(bench.deps, ctx, { image: bench.images.v1, spec: await specAt(repo, first.sha), trigger });
    expect(done.status, done.error).toBe("succeeded");
    expect(Object.keys(done.companions ?? {}).sort()).toEqual(["cache", "edge"]);

    for (const name of ["front", "back"]) {
      const n = await docker.getNetwork(net(name)).inspect();
      expect(n.Labels).toMatchObject({ "hoist.env": ctx.env, "hoist.network": name });
      if (mode === "Swarm") expect(n).toMatchObject({ Driver: "overlay", Scope: "swarm", Attachable: true });
      else expect(n).toMatchObject({ Driver: "bridge", Scope: "local" });
    }
    // No service is on `default`, so the app has no such network.
    expect((await docker.listNetworks({ filters: { name: [net("default")] } })).filter((n) => n.Name === net("default"))).toEqual([]);
    const appNetworks = async (service: string) => Object.keys((await containerOf(ctx.env, service)).NetworkSettings.Networks).filter((n) => n === net("front") || n === net("back")).sort();
    expect(await appNetworks("web")).toEqual([net("back"), net("front")]);
    expect(await appNetworks("cache")).toEqual([net("back")]);
    expect(await appNetworks("edge")).toEqual([net("front")]);
  });

  it("services reach each other by service name and by alias where they share a network, and cannot resolve each other where they do not", async () => {
    const [web, cache, edge] = [await containerOf(ctx.env, "web"), await containerOf(ctx.env, "cache"), await containerOf(ctx.env, "edge")];
    // Over HTTP: the web's /db asks the cache by its alias on the back network ("kv:8080"), and
    // the cache counts in its tmpfs.
    const answer = async () => {
      const res = await fetch(url.replace("/cgi-bin/app", "/db"));
      const body = (await res.text()).trim();
      expect(res.status, body).toBe(200);
      return body;
    };
    const first = await answer();
    expect(first).toMatch(/^v1 \d+$/);
    const count = Number(first.split(" ")[1]);
    expect(await answer()).toBe(`v1 ${count + 1}`);
    expect((await readContainerFile(docker, cache.Id, "/scratch/count")).trim()).toBe(String(count + 1));

    // By the engine's DNS: each name and alias resolves to the container's address on the network
    // they share. (On Swarm a new overlay endpoint can take a moment to be known: waited for.)
    const resolves = (from: Dockerode.ContainerInspectInfo, name: string, to: Dockerode.ContainerInspectInfo, network: string) =>
      waitFor(`${name} to resolve in ${from.Name}`, async () => {
        const got = await resolveIn(from.Id, name);
        return got !== "NXDOMAIN" && got.includes(addressOn(to, net(network))!) ? got : undefined;
      }, 30_000, 250);
    await resolves(web, "cache", cache, "back");
    await resolves(web, "kv", cache, "back");
    await resolves(web, "edge", edge, "front");
    await resolves(web, "gateway", edge, "front");
    await resolves(edge, "web", web, "front");
    await resolves(edge, "www", web, "front");
    await resolves(cache, "web", web, "back");

    // Isolation: the edge shares no network with the cache, and an alias is known only on its
    // own network (www is the web's on front, which the cache is not on).
    for (const name of ["cache", "kv"]) expect(await resolveIn(edge.Id, name), `${name} from edge`).toBe("NXDOMAIN");
    for (const name of ["edge", "gateway", "www"]) expect(await resolveIn(cache.Id, name), `${name} from cache`).toBe("NXDOMAIN");
  });

  it("puts the compose labels on the containers (on Swarm, on the tasks' container spec and so their containers)", async () => {
    for (const [service, role] of [["web", "web"], ["cache", "cache"], ["edge", "edge"]] as const) {
      const c = await containerOf(ctx.env, service);
      expect(c.Config.Labels).toMatchObject({ "com.example.app": "fidelity", "com.example.role": role, "hoist.env": ctx.env, "hoist.service": service });
      if (mode === "Swarm") {
        const id = c.Config.Labels["com.docker.swarm.service.id"];
        expect(id).toBeDefined();
        const spec = (await docker.getService(id!).inspect()).Spec as { TaskTemplate: { ContainerSpec: { Labels: Record<string, string> } } };
        expect(spec.TaskTemplate.ContainerSpec.Labels).toMatchObject({ "com.example.app": "fidelity", "com.example.role": role });
      }
    }
  });

  it("mounts the tmpfs: a tmpfs at /scratch in the containers, with the size compose gave", async () => {
    for (const [service, size] of [["web", "size=1024k"], ["cache", undefined]] as const) {
      const c = await containerOf(ctx.env, service);
      const line = (await readContainerFile(docker, c.Id, "/proc/mounts")).split("\n").find((l) => l.split(" ")[1] === "/scratch");
      expect(line, `/scratch in ${service}'s /proc/mounts`).toMatch(/^tmpfs \/scratch tmpfs /);
      if (size) expect(line).toContain(size);
      // How the engine was asked: HostConfig.Tmpfs on a Docker host, a tmpfs mount on Swarm.
      if (mode === "Swarm") expect(c.HostConfig.Mounts).toContainEqual(expect.objectContaining({ Type: "tmpfs", Target: "/scratch", ...(size ? { TmpfsOptions: expect.objectContaining({ SizeBytes: 1024 * 1024 }) } : {}) }));
      else expect(c.HostConfig.Tmpfs).toEqual({ "/scratch": size ? `size=${1024 * 1024}` : "" });
    }
  });

  it("gives each container its env_file values, read from the repository at the released sha, under its environment", async () => {
    const envOf = async (service: string) => {
      const { code, out } = await execIn(docker, (await containerOf(ctx.env, service)).Id, ["env"]);
      expect(code, out).toBe(0);
      return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    };
    // Later files win over earlier ones, and `environment:` over both.
    expect(await envOf("web")).toMatchObject({ TEAM: "shop", GREETING: "from-web-env", MODE: "from-environment", UPSTREAM: "kv:8080" });
    expect(await envOf("cache")).toMatchObject({ TEAM: "shop", GREETING: "from-common-env", COUNTER_FILE: "/scratch/count" });
    expect(await envOf("edge")).not.toHaveProperty("TEAM");
  });

  it("a secret set on the server is the file /run/secrets/NAME in the containers, and in no container's or service's settings, release record or log line", async () => {
    const web = await containerOf(ctx.env, "web");
    const cache = await containerOf(ctx.env, "cache");
    expect((await readContainerFile(docker, web.Id, "/run/secrets/api_token")).trim()).toBe(SECRET);
    expect((await readContainerFile(docker, cache.Id, "/run/secrets/token")).trim()).toBe(SECRET);
    // The mode compose asked for; root's, as no uid was given.
    expect((await execIn(docker, cache.Id, ["stat", "-c", "%a %u", "/run/secrets/token"])).out.trim()).toBe("400 0");

    const seen: [string, string][] = [["log", log.join("\n")], ["releases", JSON.stringify(await bench.deps.store.listReleases(ctx.env))]];
    expect(log.length).toBeGreaterThan(0);
    const containers = await docker.listContainers({ all: true, filters: { label: [`hoist.env=${ctx.env}`] } });
    expect(containers.length).toBe(3);
    for (const c of containers) seen.push([`docker inspect ${c.Names[0]}`, JSON.stringify(await docker.getContainer(c.Id).inspect())]);
    if (mode === "Swarm") {
      const services = await docker.listServices({ filters: { label: [`hoist.env=${ctx.env}`] } });
      expect(services.length).toBe(3);
      for (const s of services) seen.push([`docker service inspect ${s.Spec?.Name}`, JSON.stringify(await docker.getService(s.ID).inspect())]);
      // It is a Swarm secret, which the engine never shows.
      const secrets = await docker.listSecrets({ filters: { label: [`hoist.env=${ctx.env}`] } });
      expect(secrets.length).toBeGreaterThan(0);
      for (const x of secrets) seen.push([`docker secret inspect ${x.Spec?.Name}`, JSON.stringify(await docker.getSecret(x.ID).inspect())]);
    }
    expect(seen.filter(([, text]) => text.includes(SECRET)).map(([where]) => where)).toEqual([]);
  });
});
