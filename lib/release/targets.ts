import { setTimeout as sleep } from "node:timers/promises";
import { dockerClient } from "../engine/client.ts";
import { dockerClientOptions } from "../engine/docker.ts";
import { DockerInstances } from "../engine/docker-instances.ts";
import { anonymous, type RegistryLogins } from "../engine/images.ts";
import { SwarmInstances } from "../engine/swarm-instances.ts";
import { HaproxyRouter, type RuntimeAddress } from "../router/haproxy.ts";
import type { Environment } from "./environment.ts";
import { httpProbe } from "./http-probe.ts";
import type { ReleaseClock, ReleaseContext } from "./ports.ts";

/** Real time, for releases on real engines. */
export const systemReleaseClock: ReleaseClock = { now: () => Date.now(), sleep: (ms) => sleep(ms) };

/** The engine and router an environment names, ready for a release; its engine pulls with `logins`. */
export function releaseContext(env: Environment, log: (line: string) => void, logins: RegistryLogins = anonymous): ReleaseContext {
  const docker = dockerClient(dockerClientOptions(env.engine));
  return {
    env: env.name,
    backend: env.router.backend,
    ...(env.router.map ? { routesMap: env.router.map } : {}),
    host: env.mode === "swarm" ? new SwarmInstances(docker, {}, logins) : new DockerInstances(docker, logins),
    router: new HaproxyRouter(routerAddress(env.router.admin)),
    probe: httpProbe,
    clock: systemReleaseClock,
    log,
  };
}

function routerAddress(admin: string): RuntimeAddress {
  const url = new URL(admin);
  return url.protocol === "unix:" ? { socket: url.pathname } : { host: url.hostname, port: Number(url.port) };
}
