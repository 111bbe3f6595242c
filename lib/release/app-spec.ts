import type { ContainerRuntime, HealthcheckSpec, UpdatePolicy } from "../engine/instances.ts";

/**
 * A whole compose application, as a deploy stage releases it: every service of the file (or of the
 * stage's `services:` list, with what they depend on), in the order they start.
 *
 * One service takes the environment's traffic (the routed one, the release description itself)
 * and is released by its strategy, as a single-service release always was; the others are
 * released around it by their nature: `stateful` ones (with a named volume) are recreated
 * stop-first, and only when changed; `worker`s are replaced start-first. A service whose
 * definition and image did not change is left running.
 */
export interface AppParts {
  /** What the routed service depends on. */
  dependsOn: Dependency[];
  /** The other services, in start order (each after what it depends on). */
  services: AppService[];
  /** Compose networks the app uses (`default` unless the file names others), scoped to the environment. */
  networks: string[];
  /** Named volumes the app mounts, scoped to the environment and never removed by a release. */
  volumes: string[];
}

export type DependencyCondition = "service_started" | "service_healthy" | "service_completed_successfully";

export interface Dependency {
  service: string;
  condition: DependencyCondition;
}

export interface NetworkAttachment {
  /** The compose network's name (scoped to the environment by the host). */
  network: string;
  /** Names other services reach it by there, besides the service's own. */
  aliases: string[];
}

export type Mount =
  /** `source` is the compose name, scoped to the environment by the host; an external volume is mounted by its own name, `hostName`. */
  | { type: "volume"; source: string; target: string; readOnly: boolean; hostName?: string }
  /** A volume with no name: a fresh one per container, whose data does not outlive it. */
  | { type: "anonymous"; target: string }
  | { type: "bind"; source: string; target: string; readOnly: boolean }
  | { type: "tmpfs"; target: string; sizeBytes?: number };

/**
 * Container settings compose describes beyond what a release description holds: the engine's
 * terms (`restart` defaults to unless-stopped, which keeps a service up across engine restarts;
 * `privileged` only where the environment allows it), with named volumes by their compose names
 * and the labels the container carries.
 */
export interface RuntimeSettings extends Omit<ContainerRuntime, "mounts"> {
  mounts: Mount[];
  labels: Record<string, string>;
}

/**
 * A file a service gets in its container: a compose secret, whose text is one of the
 * environment's variables (`secrets: { NAME: { environment: VAR } }`), read when the release
 * starts it (the description holds the variable's name and version, never its value); or a
 * compose config, from a variable the same way, or with its text as the file gives it
 * (`content:`, or a `file:` of the repository: configs are not secret).
 */
export type SecretMount = {
  /** The secret's or config's name in the compose file. */
  name: string;
  kind?: "config";
  /** Absolute path in the container (`/run/secrets/NAME` by default; a config's `/NAME`). */
  target: string;
  mode: number;
  /** Owner of the file; root unless given. */
  uid: number;
  gid: number;
} & (
  | {
      variable: string;
      /** Changes when the variable is set again: the service is released again with the new value. */
      version: string;
    }
  | { content: string }
);

export type ServiceKind = "stateful" | "worker";

/** A service released around the routed one. */
export interface AppService {
  name: string;
  kind: ServiceKind;
  /** The image it runs: `image:`, or the run's image for a service with `build:` (filled in by the deploy stage). */
  image: string;
  command?: string[];
  environment: Record<string, string>;
  healthcheck?: HealthcheckSpec;
  replicas: number;
  update: UpdatePolicy;
  resources: { cpus?: number; memoryBytes?: number };
  dependsOn: Dependency[];
  networks: NetworkAttachment[];
  runtime: RuntimeSettings;
  secrets: SecretMount[];
}
