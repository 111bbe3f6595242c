import { HoistError } from "../errors.ts";
/**
 * The load balancer in front of an app's containers, as a release needs it: a new container
 * joins the backend, takes traffic, and the old one leaves without failing requests. All
 * changes are made at runtime, never by a reload, so connections in flight survive them.
 */

/**
 * `ready` takes new traffic; `drain` finishes what it has but gets no new requests, which is
 * how an old container is let go without cutting anyone off; `maint` gets no traffic at all,
 * the only state a server can be deleted in.
 */
export type ServerAdminState = "ready" | "drain" | "maint";

export interface RouterServer {
  name: string;
  address: string;
  port: number;
  /** The weight set by us (not the one derived from slow-start or drain). */
  weight: number;
  state: ServerAdminState;
}

/** Counters since the server was added: a release compares two readings to judge the new container. */
export interface ServerStats {
  name: string;
  /** total HTTP responses */
  responses: number;
  errors5xx: number;
  /** connection + response errors seen by the proxy */
  failures: number;
  /** current sessions */
  sessions: number;
}

export interface Router {
  /** Servers of `backend` as the proxy sees them now. */
  servers(backend: string): Promise<RouterServer[]>;
  /**
   * Adds a server (weight as given, state maint until enabled) unless one of that name exists
   * (then it only updates nothing and resolves): a retried release step must not fail or
   * duplicate, and a new container must not get traffic before the caller has checked it.
   */
  addServer(backend: string, server: { name: string; address: string; port: number; weight: number }): Promise<void>;
  /**
   * Taking a server out of service (weight 0, drain, maint) is done when it is gone already, so
   * a release resumed after a crash part-way through letting servers go can let them go again;
   * giving a gone server traffic is an error.
   */
  setWeight(backend: string, name: string, weight: number): Promise<void>;
  setState(backend: string, name: string, state: ServerAdminState): Promise<void>;
  /** Puts the server in maint and deletes it; no error if it is already gone, so cleanup can be retried. */
  removeServer(backend: string, name: string): Promise<void>;
  stats(backend: string): Promise<ServerStats[]>;
  /**
   * Sends requests for `routes` (host and path prefix) to `backend`, in place of the routes it had,
   * through the routes map `map` (a file the proxy's frontend looks backends up in), leaving every
   * other backend's routes as they are. Changed at runtime, all at once.
   */
  setRoutes(map: string, backend: string, routes: readonly { host: string; path: string }[]): Promise<void>;
}

/**
 * Anything the proxy refused or could not be asked; the message says what to do next.
 * `retryable` when the proxy could not be asked (down, overloaded, a broken connection): the
 * same step can succeed later, and a release resumed under its id carries on from where it was.
 */
export class RouterError extends HoistError {
  override readonly name = "RouterError";
  readonly retryable: boolean;
  readonly status: number;

  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options);
    this.retryable = options?.retryable ?? false;
    this.status = this.retryable ? 503 : 422;
  }
}
