import Dockerode from "dockerode";

/** Connection drops that can hit a request before any answer came back: the engine never acted on it. */
const DROPPED = new Set(["ECONNRESET", "EPIPE"]);
const RETRY_DELAYS_MS = [100, 400];

interface DialOptions {
  method?: string;
  options?: Record<string, unknown>;
  abortSignal?: AbortSignal;
}
type Dial = (options: DialOptions, callback: (err: unknown, data: unknown) => void) => void;

/**
 * A Dockerode client whose reads survive a dropped connection. An engine under load, or one
 * behind a TLS or SSH hop, now and then closes a connection before it answers ("socket hang
 * up", ECONNRESET); a GET changes nothing, so it is asked again, twice at most, before the
 * error goes up. Writes are never repeated here: whether the engine acted on one is unknown,
 * and the callers' own retries (the error tree) decide that with the state in hand.
 * docker-modem has no retry of its own, hence this wrapper of its one entry point.
 */
export function dockerClient(options: Dockerode.DockerOptions): Dockerode {
  const docker = new Dockerode(options);
  const modem = docker.modem as unknown as { dial: Dial };
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) => {
    if ((options.method ?? "GET") !== "GET") return dial(options, callback);
    // dial deletes credentials and the abort signal from what it is given: each try gets a copy.
    const copy = (): DialOptions => ({ ...options, ...(options.options ? { options: { ...options.options } } : {}) });
    const attempt = (n: number): void =>
      dial(copy(), (err, data) => {
        const delay = RETRY_DELAYS_MS[n];
        if (err && delay !== undefined && dropped(err) && !options.abortSignal?.aborted) setTimeout(() => attempt(n + 1), delay);
        else callback(err, data);
      });
    attempt(0);
  };
  return docker;
}

function dropped(err: unknown): boolean {
  const { code, message, statusCode } = err as { code?: string; message?: string; statusCode?: number };
  return statusCode === undefined && (DROPPED.has(code ?? "") || /socket hang up/i.test(message ?? ""));
}
