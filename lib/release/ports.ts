import type { Clock } from "../clock.ts";
import type { InstanceHost } from "../engine/instances.ts";
import type { Router } from "../router/port.ts";

/**
 * The release core's ports: everything a strategy touches outside itself comes through the
 * release context, so the same strategy runs on Docker, Swarm and HAProxy in production and on
 * in-memory fakes in its unit tests.
 */

export type { InstanceHost, Router };

/** The Clock port, and waiting on it: a fake one advances its time instead of sleeping. */
export interface ReleaseClock extends Clock {
  sleep(ms: number): Promise<void>;
}

/** The x-hoist HTTP health gate. */
export interface HttpHealth {
  path: string;
  status: number;
  timeoutMs: number;
  intervalMs: number;
  retries: number;
}

/** What one GET of an instance's health path saw: the answer's status, or why there was none. */
export type ProbeAnswer = { status: number } | { error: string };

/** Asks an instance, once, how it is. */
export interface HealthProbe {
  get(address: string, port: number, check: Pick<HttpHealth, "path" | "timeoutMs">): Promise<ProbeAnswer>;
}

/** What a strategy needs: the environment's engine, router and health probe, and time. */
export interface ReleaseContext {
  env: string;
  backend: string;
  /** The router's routes map, where the app's `x-hoist.routes` go; absent: the router takes none. */
  routesMap?: string;
  host: InstanceHost;
  router: Router;
  probe: HealthProbe;
  clock: ReleaseClock;
  log: (line: string) => void;
  /**
   * Why the release is no longer wanted (its run was cancelled), or undefined. Asked before each
   * move that would give the new release more traffic, so a cancel stops the release at the
   * next such point with the previous release serving, rather than after it has finished.
   */
  stopped?: () => Promise<string | undefined>;
  /**
   * The environment's variables by name, with their values: a compose secret's file content.
   * Absent: the environment has none (a secret the app reads fails the release).
   */
  variables?: () => Promise<ReadonlyMap<string, string>>;
}
