import type { Strategy } from "../pipeline/strategy.ts";
import type { HealthcheckSpec, UpdatePolicy } from "../engine/instances.ts";
import type { AppParts, NetworkAttachment, RuntimeSettings, SecretMount } from "./app-spec.ts";
/**
 * A release, read from one service of the user's `docker-compose.yml`.
 *
 * Compose keys are read as the Compose Specification defines them (services, deploy, healthcheck);
 * Hoist's own settings live in the service-level extension `services.<name>.x-hoist` (see `hoist`).
 * Every key Compose allows but Hoist does not act on yet (volumes, networks, labels, ...) is ignored
 * with a warning naming its line (see `ignoredKeys`); a key Hoist reads with the wrong type or value
 * is an error naming its line and path.
 *
 * Values are read after variable interpolation, as Compose reads them (`${VAR:-default}`, `$$` for a
 * literal `$`; see lib/compose/interpolate.ts): `replicas: ${N:-2}` is 2.
 */
export interface ReleaseSpec {
  /** The routed service; "" in an app with none (`unrouted`). */
  service: string;
  /** No service takes the environment's traffic: only `app`'s services are released, the router is left alone. */
  unrouted?: true;
  /** `image:` as written; the deploy stage replaces it with the image the pipeline built. */
  image?: string;
  /**
   * The container command as argv, overriding the image's CMD. A list is kept as written. A string is
   * split into words the way Compose does it (Compose does not run a shell either): whitespace separates
   * words, '...' and "..." quote, backslash escapes. A string using shell syntax that splitting cannot
   * express (`|`, `&&`, `;`, `<`, `>`, `(`, backticks) is an error asking for `["sh", "-c", "..."]` or the
   * list form: Compose would silently drop everything from that operator on.
   * Absent or null: the image's CMD. `""` or `[]`: `[]`, i.e. the image's CMD overridden to nothing.
   */
  command?: string[];
  /**
   * Map form or `KEY=value` list form. Numbers and booleans become strings. A name without a value
   * (`USER_INPUT:` or `- USER_INPUT`) asks Compose to take it from the shell environment, which is
   * interpolation: such names are left out (unset), as Compose does when the shell has no value.
   */
  environment: Record<string, string>;
  /** The container port the router sends traffic to: x-hoist.port, else the first ports entry's target, else error. */
  port: number;
  /** `deploy.replicas`, default 1. */
  replicas: number;
  /** `deploy.update_config`. */
  update: UpdatePolicy;
  /** `deploy.rollback_config` (its failure_action is `continue` or `pause` only, per the spec). */
  rollback: UpdatePolicy;
  /** `deploy.resources.limits`; a limit of 0 means "no limit" and is left out. */
  resources: { cpus?: number; memoryBytes?: number };
  /**
   * `healthcheck:` in Docker's terms. A string test becomes `["CMD-SHELL", test]`; `disable: true` becomes
   * `["NONE"]` (Docker's way of switching off the image's HEALTHCHECK); a healthcheck without `test` gets
   * `[]` (Docker: keep the image's test). Unset durations and retries take the Dockerfile HEALTHCHECK
   * defaults: interval 30s, timeout 30s, start period 0s, retries 3. Absent when no `healthcheck:` is set.
   */
  healthcheck?: HealthcheckSpec;
  /** `services.<name>.x-hoist`: Hoist's release settings. */
  hoist: HoistSettings;
  /** The app's networks it joins, with its aliases there; absent: the app's `default` network. */
  networks?: NetworkAttachment[];
  /** Mounts, labels and the other container settings compose gives it. */
  runtime?: RuntimeSettings;
  /** Compose secrets it reads as files. */
  secrets?: SecretMount[];
  /** The rest of the compose application, released around this service. */
  app?: AppParts;
}

// `update_config` / `rollback_config` (UpdatePolicy; Docker's `docker service` defaults, which the
// spec follows except for monitor, where the spec text says 0s and Docker Swarm uses 5s: parallelism
// 1, delay 0s, failure_action pause, monitor 5s, max_failure_ratio 0, order stop-first) and the
// container health check are the hosts' own terms, declared where the hosts use them.
export type { HealthcheckSpec, UpdatePolicy };

/**
 * The `x-hoist` extension, read from the service (`services.<name>.x-hoist`), in Compose's snake_case:
 *
 * ```yaml
 * services:
 *   web:
 *     x-hoist:
 *       port: 8080                  # else the first ports entry's target
 *       strategy: canary            # rolling (default) | blue-green | canary
 *       steps: [5, 25, 100]         # canary weights in percent
 *       interval: 1m                # between canary steps: "1m30s" or seconds (90)
 *       health: { path: /healthz, status: 204, timeout: 2s, interval: 1s, retries: 30 }
 *       error_threshold: 0.02
 *       drain: 10s
 *       routes: [shop.example.com, shop.example.com/api]   # host[/path prefix]
 * ```
 *
 * A top-level `x-hoist:` is not read: Compose extensions at the top level are commonly YAML anchors
 * (`x-hoist: &hoist ...` then `x-hoist: *hoist` in each service), so it is left alone like any `x-*` key.
 * Durations take Go-style strings ("500ms", "1m30s") or a number of seconds. Unknown keys are errors.
 */
export interface HoistSettings {
  /** Default rolling. */
  strategy: Strategy;
  /** Canary weights in percent: strictly increasing, each 1..100, the last 100. Default [10, 50, 100]. */
  steps: number[];
  /** Between canary steps; default 30s. */
  intervalMs: number;
  /** The HTTP check the router gate uses. Defaults: path "/", status 200, timeout 2s, interval 1s, retries 30. */
  health: { path: string; status: number; timeoutMs: number; intervalMs: number; retries: number };
  /** Canary aborts when its 5xx ratio exceeds the stable one's by more than this (0..1); default 0.05. */
  errorThreshold: number;
  /** Grace period before old instances stop; default 5s. */
  drainMs: number;
  /**
   * Requests for these hosts and path prefixes go to this environment's backend, on a router that
   * serves several (the environment's `router.map`); absent: the router's own rules decide.
   */
  routes?: Route[];
}

/** A host name (lower case) and a path prefix ("/" for every path). */
export interface Route {
  host: string;
  path: string;
}
