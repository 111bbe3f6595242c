/**
 * A login to a registry, as the Engine API takes it (the X-Registry-Auth header) and the
 * registry's own API checks it. It lives in memory only: never in a record, log or answer.
 */
export interface RegistryAuth {
  username: string;
  /** A password, or a token the registry takes in its place. */
  password: string;
  /** The registry host the login is for. */
  serveraddress: string;
}

/** The host that holds images without a registry in their name, as Docker names it. */
export const DOCKER_HUB = "docker.io";
