/**
 * Long-lived service instances (the containers a release runs), as opposed to the
 * engine's short jobs. Names are the idempotency keys: starting a name that exists
 * starts that container again instead of making a second one.
 */

/**
 * How a host replaces a set's instances in place, in Compose's `update_config` terms (parallelism
 * 0 = all at once). Declared here, where the hosts use it; a release description carries one.
 */
export interface UpdatePolicy {
  parallelism: number;
  delayMs: number;
  order: "stop-first" | "start-first";
  failureAction: "rollback" | "pause" | "continue";
  monitorMs: number;
  maxFailureRatio: number;
}

/** A container's own health check, in Docker's terms. */
export interface HealthcheckSpec {
  /** Docker's form: `[]`, `["NONE"]`, `["CMD", ...args]` or `["CMD-SHELL", command]`. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

export interface InstanceSpec {
  /** From the host's `instanceName`. */
  name: string;
  image: string;
  env: Record<string, string>;
  command?: string[];
  labels: Record<string, string>;
  /** The container port the router sends traffic to. */
  port: number;
  cpus?: number;
  memoryBytes?: number;
  /** The container's own health check (compose `healthcheck:`), when the user gave one. */
  healthcheck?: HealthcheckSpec;
  /**
   * The app's networks it joins (host-scoped names, see `scopedName`) with the names it is reached
   * by there; the router reaches it on the first. Absent: the host's default network.
   */
  networks?: { name: string; aliases: string[] }[];
  /** Container settings beyond the above, from the compose service; volume mounts by their host-scoped names. */
  runtime?: ContainerRuntime;
  /** Files written into the container before it starts (compose secrets): never in its environment or settings. */
  files?: InstanceFile[];
}

export interface InstanceFile {
  /** Absolute. */
  path: string;
  content: string;
  mode: number;
  uid: number;
  gid: number;
}

/** How a container runs, in the engine's terms (compose's, with volumes already scoped to the environment). */
export interface ContainerRuntime {
  mounts: (
    | { type: "volume"; source: string; target: string; readOnly: boolean }
    | { type: "anonymous"; target: string }
    | { type: "bind"; source: string; target: string; readOnly: boolean }
    | { type: "tmpfs"; target: string; sizeBytes?: number }
  )[];
  entrypoint?: string[];
  user?: string;
  workingDir?: string;
  stopSignal?: string;
  stopGraceMs?: number;
  readOnly?: boolean;
  /** `host:ip` entries. */
  extraHosts: string[];
  restart: { name: "no" | "always" | "on-failure" | "unless-stopped"; maxRetries?: number };
  privileged?: boolean;
  capAdd: string[];
  capDrop: string[];
  /** `deploy.placement`: where Swarm may run the tasks (a single Docker host has one place). */
  placement?: { constraints: string[]; spreads: string[]; maxReplicasPerNode?: number };
}

export interface Instance {
  name: string;
  image: string;
  /** Address the router and health probes reach the instance at. */
  address: string;
  port: number;
  running: boolean;
  labels: Record<string, string>;
  /** The container's own health check's verdict, when it has one. */
  health?: "starting" | "healthy" | "unhealthy";
  /** How it exited, once it has (a one-off job that dependents wait for). */
  exitCode?: number;
}

export interface InstanceHost {
  /** The name of instance `index` (from 0) of a release's set of instances called `set`. */
  instanceName(set: string, index: number): string;
  /** Creates (if missing) and starts the instance; resolves once it runs and has an address. */
  start(spec: InstanceSpec): Promise<Instance>;
  inspect(name: string): Promise<Instance | undefined>;
  /** Instances carrying all of `labels`, running or stopped. */
  list(labels: Record<string, string>): Promise<Instance[]>;
  /**
   * Stops the instance (kept, for an instant rollback); no error if it is gone. On a host with
   * `groups`, this stops the instance's whole set.
   */
  stop(name: string): Promise<void>;
  /** Removes the instance; no error if it is gone. On a host with `groups`, the whole set. */
  remove(name: string): Promise<void>;
  /**
   * Makes sure the host can run image `ref`: pulls it (with its registry's login) when absent.
   * A refused login or an image the registry does not hold fails for good; an outage is retryable.
   */
  ensureImage(ref: string): Promise<void>;
  /** The registry digest of the image instance `name` runs, for a release of `image`; undefined when no registry holds it. */
  runningDigest(name: string, image: string): Promise<string | undefined>;
  /**
   * Makes the app network `name` unless it exists: a bridge on a Docker host; on Swarm an
   * attachable overlay, or for `edge` (where the router reaches routed instances on their node)
   * a swarm-scoped bridge.
   */
  ensureNetwork(name: string, labels: Record<string, string>, edge?: boolean): Promise<void>;
  /** Makes the named volume unless it exists; a release never removes one. */
  ensureVolume(name: string, labels: Record<string, string>): Promise<void>;
  /**
   * Where the host keeps instances' files apart from them (Swarm secrets): removes the
   * environment's that no instance uses any more, once a release has pruned the old ones.
   */
  removeUnusedFiles?(env: string): Promise<void>;
  /** The command that shows an instance's output, for error messages. */
  logsCommand(name: string): string;
  /**
   * Present when the host runs a release's instances as the replicas of one unit (a Swarm
   * service) and replaces them in place itself (Swarm's rolling update).
   */
  readonly groups?: InstanceGroups;
}

/** What a grouped host's own rolling update is given: the new instances' settings, how many, how to roll. */
export interface GroupUpdate extends Omit<InstanceSpec, "name"> {
  replicas: number;
  update: UpdatePolicy;
  rollback: UpdatePolicy;
  /** Gates each replaced instance: the host moves on only when the new one passes it. */
  healthcheck: HealthcheckSpec;
}

/** `completed`, `paused`, `rollback_completed`, `rollback_paused` end an update; none: no update ever ran. */
export type GroupUpdateState = "updating" | "paused" | "completed" | "rollback_started" | "rollback_paused" | "rollback_completed" | "none";

export interface GroupProgress {
  state: GroupUpdateState;
  /** The host's own words on the update, and on the newest failed instance. */
  message: string;
  replicas: number;
  /** Running instances the host means to keep running (none it is stopping). */
  serving: Instance[];
}

export interface ChangeFeed {
  /**
   * Resolves once something changed since the last call (at once if it already has): true; or
   * after `timeoutMs` with nothing new: false.
   */
  next(timeoutMs: number): Promise<boolean>;
  close(): void;
}

/**
 * Waits between looks at something the feed reports on: after news, a few quick looks (what the
 * news is about can settle a moment later, e.g. a Swarm task turns running after its container
 * starts, with no event of its own), else until the next news or `idleMs`. Looks are at least
 * `quickMs` apart, however much news comes: a burst of it makes one look.
 */
function pacer(feed: ChangeFeed, { quickMs, idleMs, quickLooks = 3 }: { quickMs: number; idleMs: number; quickLooks?: number }): () => Promise<void> {
  let quick = 0;
  return async () => {
    const began = Date.now();
    const news = await feed.next(quick > 0 ? quickMs : idleMs);
    quick = news ? quickLooks : Math.max(0, quick - 1);
    const soon = quickMs - (Date.now() - began);
    if (news && soon > 0) await new Promise((resolve) => setTimeout(resolve, soon));
  };
}

/**
 * Runs `fn` on the host's news about `group`, with a wait between its looks paced as `pacer`
 * says, and closes the feed however `fn` ends.
 */
export async function withChanges<T>(
  groups: Pick<InstanceGroups, "changes">,
  group: string,
  pace: { quickMs: number; idleMs: number },
  fn: (wait: () => Promise<void>) => Promise<T>,
): Promise<T> {
  const changes = await groups.changes(group);
  try {
    return await fn(pacer(changes, pace));
  } finally {
    changes.close();
  }
}

export interface InstanceGroups {
  /** The set an instance belongs to. */
  groupOf(instance: string): string;
  /** Starts the in-place rolling update of `group`; one already started for the same release is left to run. */
  update(group: string, spec: GroupUpdate): Promise<void>;
  /** Undefined when the host has no such set (any more). */
  progress(group: string): Promise<GroupProgress | undefined>;
  /**
   * Undoes the in-place update of `group` to `release`, under way or just done: the host puts
   * the set's previous settings back, its own way (Swarm: with the rollback_config). A no-op
   * when the set does not run that release (the update never began, or is already undone).
   */
  revert(group: string, release: string): Promise<void>;
  /**
   * The host's news about `group` (an instance starting, stopping, turning healthy; the update
   * changing state), so that following an update costs an engine call per change rather than a
   * poll every few hundred milliseconds. Close it when done.
   */
  changes(group: string): Promise<ChangeFeed>;
}
