import type { AppServiceFields } from "./app-schema.ts";
import { isMapping } from "./merge.ts";
import { at, lineAt, type Path } from "../yaml/locate.ts";
import type { LineTree } from "../yaml/read.mjs";

/**
 * What an environment lets a repository's compose file reach on the engine's host. Off by
 * default: a repository must not be able to mount the host's `/` or the engine's socket, or run
 * a container that is root on the host.
 */
export interface HostAllowances {
  /** Bind mounts of absolute host paths, devices, and volumes made outside the app (`external`). */
  hostPaths?: boolean;
  /** `privileged`, `cap_add`, `security_opt`. */
  privileged?: boolean;
}

/**
 * The reasons Hoist refuses a compose application, each a key whose absence would change what
 * runs: the stage fails naming the key and its line rather than release something else.
 */
export const REFUSALS = {
  invalid: "breaks the compose specification: Compose itself would refuse the file",
  "no-route": "has no service with one TCP port to take the environment's traffic, or several and the stage names none",
  "several-builds": "builds several different images, where the build stage built one Dockerfile (build: { compose } builds each)",
  "shared-volume": "runs several replicas of a service with a named volume",
  "missing-secret": "reads a secret or config from a variable the environment does not have (hoist env vars set ENV NAME [--secret])",
  "host-namespace": "shares the host's network, processes or users (network_mode, pid, ipc, userns_mode)",
  "host-path": "mounts a host path or device (allowed only where the environment allows host paths)",
  "repository-path": "bind-mounts the repository's own files, which are not on the engine's host",
  privileged: "asks for privileges (privileged, cap_add, security_opt; allowed only where the environment allows them)",
  "shared-container": "shares another container's volumes or namespace (volumes_from)",
  "no-image": "has a service other than the routed one with neither image nor build",
  "not-yet": "uses a compose feature Hoist does not release yet (external networks, volume drivers, include's project_directory)",
} as const;
export type Refusal = keyof typeof REFUSALS;

interface Doc {
  root: Record<string, unknown>;
  lines: LineTree;
  file: string;
}

export interface Refused {
  reason: Refusal;
  error: string;
}

/** The first reason the app can't be released as written, or undefined. */
export function appRefusals(doc: Doc, fields: ReadonlyMap<string, AppServiceFields>, allow: HostAllowances): Refused | undefined {
  const refuse = (reason: Refusal, path: Path, message: string): Refused => ({ reason, error: at(doc.file, lineAt(doc.lines, path), message) });
  const volumes = mappingOf(doc.root.volumes);
  const networks = mappingOf(doc.root.networks);
  // Only the volumes a released service mounts: a declared, unused one is no one's concern.
  const mounted = new Set([...fields.values()].flatMap((f) => (f.volumes ?? []).flatMap((m) => (m.type === "volume" ? [m.source] : []))));
  for (const [name, v] of Object.entries(volumes)) {
    if (!mounted.has(name)) continue;
    const spec = mappingOf(v);
    if (truthy(spec.external) && !allow.hostPaths)
      return refuse("host-path", ["volumes", name, "external"], `volumes.${name}: an external volume lives outside the app, and this environment does not allow host paths: declare it without external (Hoist makes one per environment)`);
    for (const key of ["driver", "driver_opts"] as const)
      if (spec[key] !== undefined && spec[key] !== null && !(key === "driver" && spec[key] === "local"))
        return refuse(key === "driver_opts" ? "host-path" : "not-yet", ["volumes", name, key], `volumes.${name}.${key}: Hoist makes plain local volumes; volume drivers and their options are not supported`);
  }
  for (const [name, n] of Object.entries(networks)) {
    const spec = mappingOf(n);
    if (truthy(spec.external)) return refuse("not-yet", ["networks", name, "external"], `networks.${name}: Hoist makes each app's networks per environment and does not join external ones`);
  }

  for (const [name, f] of fields) {
    const raw = mappingOf((doc.root.services as Record<string, unknown>)[name]);
    const here = (...path: Path) => ["services", name, ...path];
    const where = `services.${name}`;
    if (raw.network_mode !== undefined && raw.network_mode !== null)
      return refuse("host-namespace", here("network_mode"), `${where}.network_mode: ${String(raw.network_mode)} is refused: Hoist puts each service on its app's networks, where the router and the other services reach it`);
    for (const key of ["pid", "ipc", "userns_mode", "uts", "cgroup"] as const) {
      const value = raw[key];
      if (value === "host" || (typeof value === "string" && /^(container|service):/.test(value)))
        return refuse("host-namespace", here(key), `${where}.${key}: ${value} is refused: a service gets its own ${key} namespace`);
    }
    if (raw.volumes_from !== undefined && raw.volumes_from !== null)
      return refuse("shared-container", here("volumes_from"), `${where}.volumes_from: mount the same named volume in both services instead`);
    if (!allow.privileged) {
      for (const key of ["privileged", "cap_add", "security_opt"] as const) {
        const value = raw[key];
        if (value === undefined || value === null || value === false || (Array.isArray(value) && value.length === 0)) continue;
        return refuse("privileged", here(key), `${where}.${key}: this environment does not allow privileges: drop ${key}, or allow them on the environment (\`hoist env set --allow-privileged\`)`);
      }
    } else if (raw.security_opt !== undefined && raw.security_opt !== null)
      return refuse("not-yet", here("security_opt"), `${where}.security_opt: Hoist does not pass security options yet`);
    if (f.read_only && (f.secrets?.length ?? 0) + (f.configs?.length ?? 0) > 0)
      return refuse("not-yet", here("read_only"), `${where}: Hoist writes secrets and configs into the container's file system, which read_only forbids: drop read_only, or them`);
    if (raw.devices !== undefined && raw.devices !== null)
      return refuse(allow.hostPaths ? "not-yet" : "host-path", here("devices"), `${where}.devices: ${allow.hostPaths ? "Hoist does not pass devices yet" : "this environment does not allow host devices"}`);
    for (const [i, m] of (f.volumes ?? []).entries()) {
      if (m.type === "bind") {
        if (!m.source.startsWith("/"))
          return refuse("repository-path", here("volumes", i), `${where}.volumes: ${m.source} is a path in the repository, which is not on the engine's host: copy it into the image (build), or use a named volume`);
        if (!allow.hostPaths)
          return refuse("host-path", here("volumes", i), `${where}.volumes: ${m.source} is a host path, and this environment does not allow host paths: use a named volume, or allow host paths on the environment (\`hoist env set --allow-host-paths\`)`);
      }
      if (m.type === "volume" && !Object.hasOwn(volumes, m.source))
        return refuse("invalid", here("volumes", i), `${where}.volumes: the volume "${m.source}" is not declared under the top-level volumes: add it there`);
    }
    for (const [i, n] of (f.networks ?? []).entries())
      if (n.network !== "default" && !Object.hasOwn(networks, n.network))
        return refuse("invalid", here("networks", typeof raw.networks === "object" && Array.isArray(raw.networks) ? i : n.network), `${where}.networks: the network "${n.network}" is not declared under the top-level networks: add it there`);
  }
  return undefined;
}

function mappingOf(v: unknown): Record<string, unknown> {
  return isMapping(v) ? v : {};
}

const truthy = (v: unknown) => v === true || v === "true" || (typeof v === "object" && v !== null);
