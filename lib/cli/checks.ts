import type Dockerode from "dockerode";
import { LOCAL_ENGINE, type EngineAccess } from "../engine/access.ts";

/** Whether the Docker engine and the registry a local Hoist drives answer, before it starts. */

type Check = { ok: true } | { ok: false; problem: string };

/** Loaded on first use: dockerode takes longer to load than most commands take to run. */
async function engineClient(access: EngineAccess): Promise<Dockerode> {
  const [{ dockerClient }, { dockerClientOptions }] = await Promise.all([import("../engine/client.ts"), import("../engine/docker.ts")]);
  return dockerClient(dockerClientOptions(access));
}

/** Whether the engine at `access` (default: the local socket) answers a ping within 5 s. */
export async function checkEngine(access: EngineAccess = { endpoint: LOCAL_ENGINE }): Promise<Check & { docker?: Dockerode }> {
  let docker: Dockerode;
  try {
    docker = await engineClient(access);
  } catch (err) {
    return { ok: false, problem: `the Docker engine ${access.endpoint} cannot be used: ${(err as Error).message}` };
  }
  try {
    await withTimeout(docker.ping(), 5_000);
    return { ok: true, docker };
  } catch (err) {
    return { ok: false, problem: `the Docker engine is not reachable at ${access.endpoint} (${(err as Error).message})` };
  }
}

export async function checkRegistry(registry: string): Promise<Check> {
  const url = `http://${registry}/v2/`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    if (res.status === 200 || res.status === 401) return { ok: true };
    return { ok: false, problem: `the registry at ${registry} answered ${res.status} on /v2/` };
  } catch (err) {
    const e = err as { cause?: { code?: string }; message?: string };
    return { ok: false, problem: `the registry is not reachable at ${registry} (${e.cause?.code ?? e.message})` };
  }
}

/** Everything a local pipeline needs: engine, base images, registry. */
export async function checkServices(dockerHost: string | undefined, registry: string, builderImage: string): Promise<string[]> {
  const [engine, reg] = await Promise.all([checkEngine(dockerHost ? { endpoint: dockerHost } : undefined), checkRegistry(registry)]);
  const problems: string[] = [];
  if (!engine.ok) problems.push(engine.problem);
  else if (engine.docker) {
    for (const image of ["hoist/busybox:latest", builderImage]) {
      const present = await engine.docker
        .getImage(image)
        .inspect()
        .then(
          () => true,
          () => false,
        );
      if (!present) problems.push(`the base image ${image} is missing`);
    }
  }
  if (!reg.ok) problems.push(reg.problem);
  return problems;
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${ms / 1000}s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
