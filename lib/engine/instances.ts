/**
 * Long-lived service instances (the containers a release runs), as opposed to the
 * engine's short jobs. Names are the idempotency keys: starting a name that exists
 * starts that container again instead of making a second one.
 */

export interface InstanceSpec {
  name: string;
  image: string;
  env: Record<string, string>;
  command?: string[];
  labels: Record<string, string>;
  /** The container port the router sends traffic to. */
  port: number;
  cpus?: number;
  memoryBytes?: number;
}

export interface Instance {
  name: string;
  image: string;
  /** Address the router and health probes reach the instance at. */
  address: string;
  port: number;
  running: boolean;
  labels: Record<string, string>;
}

export interface InstanceHost {
  /** Creates (if missing) and starts the instance; resolves once it runs and has an address. */
  start(spec: InstanceSpec): Promise<Instance>;
  inspect(name: string): Promise<Instance | undefined>;
  /** Instances carrying all of `labels`, running or stopped. */
  list(labels: Record<string, string>): Promise<Instance[]>;
  /** Stops the instance (kept, for an instant rollback); no error if it is gone. */
  stop(name: string): Promise<void>;
  /** Removes the instance; no error if it is gone. */
  remove(name: string): Promise<void>;
  imageExists(ref: string): Promise<boolean>;
  /** The command that shows an instance's output, for error messages. */
  logsCommand(name: string): string;
}
