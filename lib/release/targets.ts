import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import Dockerode from "dockerode";
import { DockerInstances } from "../engine/docker-instances.ts";
import { SwarmInstances } from "../engine/swarm-instances.ts";
import { HaproxyRouter, type RuntimeAddress } from "../router/haproxy.ts";
import type { Environment } from "./environment.ts";
import type { ReleaseContext } from "./moves.ts";

/** The engine and router an environment names, ready for a release. */
export function releaseContext(env: Environment, log: (line: string) => void): ReleaseContext {
  const docker = new Dockerode(dockerOptions(env.engine));
  return {
    env: env.name,
    backend: env.router.backend,
    host: env.mode === "swarm" ? new SwarmInstances(docker) : new DockerInstances(docker),
    router: new HaproxyRouter(routerAddress(env.router.admin)),
    log,
    sleep: (ms) => sleep(ms),
  };
}

function dockerOptions(engine: Environment["engine"]): Dockerode.DockerOptions {
  const url = new URL(engine.endpoint);
  if (url.protocol === "unix:") return { socketPath: url.pathname };
  if (url.protocol === "ssh:") return { protocol: "ssh", host: url.hostname, port: Number(url.port || 22), username: decodeURIComponent(url.username) || "root" };
  const tls = engine.tls ? { ca: readFileSync(engine.tls.ca), cert: readFileSync(engine.tls.cert), key: readFileSync(engine.tls.key) } : undefined;
  return { protocol: tls ? "https" : "http", host: url.hostname, port: Number(url.port || (tls ? 2376 : 2375)), ...tls };
}

function routerAddress(admin: string): RuntimeAddress {
  const url = new URL(admin);
  return url.protocol === "unix:" ? { socket: url.pathname } : { host: url.hostname, port: Number(url.port) };
}
