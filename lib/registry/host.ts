import { parseImageRef } from "../pipeline/image-ref.ts";

/**
 * Which registry an image reference names, as logins are registered and looked up: one name per
 * registry, so that a login is found whichever of Docker Hub's names a reference uses.
 */

/** The name Docker gives Docker Hub, which holds every image whose reference names no registry. */
export const DOCKER_HUB = "docker.io";

/** Docker Hub's other names in references, which Docker reads as docker.io. */
const DOCKER_HUB_ALIASES = new Set(["index.docker.io", "registry-1.docker.io"]);

export function isDockerHubAlias(host: string): boolean {
  return DOCKER_HUB_ALIASES.has(host);
}

/** The registry host an image reference names: Docker Hub's one name when it names none, or another of Hub's. */
export function registryHostOf(ref: string): string {
  const { host } = parseImageRef(ref);
  return host === undefined || isDockerHubAlias(host) ? DOCKER_HUB : host;
}
