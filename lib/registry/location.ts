import { BadInputError } from "../errors.ts";
import { parseImageRef } from "../pipeline/image-ref.ts";
import { DOCKER_HUB, registryHostOf } from "./host.ts";

/** Where a reference's manifest lives, in the terms of the registry API. */
export interface RegistryLocation {
  /** The registry as references and credentials name it: `docker.io` for Docker Hub. */
  host: string;
  /** Base URL of the API: https, or http for a registry on this machine (as dockerd does). */
  origin: string;
  /** The repository on that registry, e.g. `library/nginx`. */
  repository: string;
  tag?: string;
  digest?: string;
  /** What the registry is asked for: the digest when there is one (as Docker does), else the tag. */
  reference: string;
  /** `host/repository@digest` or `host/repository:tag`, for messages. */
  display: string;
}

/** The host Docker Hub's API answers on. */
const DOCKER_HUB_API = "registry-1.docker.io";

// The reference grammar of distribution/reference: checked before any part goes into a URL.
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const PATH = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
/** A content digest, `algorithm:hex`. */
export const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

/** The registry, repository and tag or digest of an image reference; Docker Hub's short names included. */
export function registryLocation(ref: string): RegistryLocation {
  const parsed = parseImageRef(ref);
  const host = registryHostOf(ref);
  const hub = host === DOCKER_HUB;
  // Docker Hub keeps its official images under `library/`: `nginx` is `library/nginx`.
  const repository = hub && !parsed.path.includes("/") ? `library/${parsed.path}` : parsed.path;
  const bad = (what: string) => new BadInputError(`image reference ${JSON.stringify(ref)}: ${what}`);
  if (!HOST.test(host)) throw bad("the registry host is not a host name or address");
  if (!PATH.test(repository)) throw bad("the repository must be lowercase path components (a-z, 0-9, separators . _ __ -)");
  if (parsed.tag !== undefined && !TAG.test(parsed.tag)) throw bad("the tag must be up to 128 letters, digits, _ . -");
  if (parsed.digest !== undefined && !DIGEST.test(parsed.digest)) throw bad("the digest must be algorithm:hex, e.g. sha256:<64 hex digits>");
  const tag = parsed.tag ?? (parsed.digest === undefined ? "latest" : undefined);
  const reference = parsed.digest ?? (tag as string);
  return {
    host,
    origin: `${isLoopbackHost(host) ? "http" : "https"}://${hub ? DOCKER_HUB_API : host}`,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(parsed.digest !== undefined ? { digest: parsed.digest } : {}),
    reference,
    display: `${host}/${repository}${parsed.digest !== undefined ? `@${parsed.digest}` : `:${tag}`}`,
  };
}

/**
 * Whether `host` (with or without a port) is this machine: dockerd talks plain HTTP to such
 * registries without being told (its default insecure range, 127.0.0.0/8), and so do we.
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
  return name === "localhost" || name === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
