import { readFile } from "node:fs/promises";
import type Dockerode from "dockerode";
import type { RegistryLogin } from "../../lib/registry/auth.ts";
import { requireDocker } from "./docker.ts";

/** The second Docker engine `scripts/services.sh` starts, standing in for another host. */
export const ENGINE2_SOCKET = "/run/hoist-engine2/docker.sock";
/** The registry `scripts/services.sh` starts that requires a login. */
export const AUTH_REGISTRY = "127.0.0.1:5001";
const AUTH_REGISTRY_USER = "hoist";
/** Written once by `scripts/services.sh`, readable by root only. */
const AUTH_REGISTRY_PASSWORD_FILE = "/var/lib/hoist-registry-auth/password";
const HOW_TO_START = "run `bash scripts/services.sh`";

/** The login of the registry at AUTH_REGISTRY; fails (never skips) with how to make it when it is missing. */
export async function authRegistryCredentials(): Promise<RegistryLogin> {
  let password = "";
  try {
    password = (await readFile(AUTH_REGISTRY_PASSWORD_FILE, "utf8")).trim();
  } catch (err) {
    throw new Error(`no password for the registry at ${AUTH_REGISTRY} in ${AUTH_REGISTRY_PASSWORD_FILE}: ${HOW_TO_START}`, { cause: err });
  }
  if (password === "") throw new Error(`${AUTH_REGISTRY_PASSWORD_FILE} is empty: ${HOW_TO_START}`);
  return { username: AUTH_REGISTRY_USER, password };
}

/** Checks that the registry at AUTH_REGISTRY answers, and asks for a login; fails with how to start it. */
export async function requireAuthRegistry(): Promise<void> {
  let status: number | string;
  try {
    status = (await fetch(`http://${AUTH_REGISTRY}/v2/`, { signal: AbortSignal.timeout(5_000) })).status;
  } catch (err) {
    status = String(err);
  }
  if (status !== 401) throw new Error(`no registry asking for a login at ${AUTH_REGISTRY} (${status}): ${HOW_TO_START}`);
}

/** A client for the second engine; fails (never skips) with how to start it when it does not answer. */
export function requireEngine2(): Promise<Dockerode> {
  return requireDocker(ENGINE2_SOCKET);
}
