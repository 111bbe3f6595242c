import { ConfigError, type Env } from "../config.ts";
import type { LocalRuntime } from "../local/runtime.ts";
import { CliError, type Output } from "./output.ts";

/**
 * startLocal, with a listen failure (port in use, no permission) reported as what to do:
 * the HTTP server reports it as an 'error' event, which nothing in startLocal listens to.
 * Loaded on first use: the runtime pulls in the AWS SDK, which the read-only commands skip.
 */
export async function startRuntime(env: Env, port: number, out: Output): Promise<LocalRuntime> {
  const { startLocal } = await import("../local/runtime.ts");
  const onListenError = (err: NodeJS.ErrnoException) => {
    if (err.code === "EADDRINUSE" || err.code === "EACCES") {
      out.fail(
        new CliError(
          err.code === "EADDRINUSE"
            ? `port ${port} is already in use (another \`hoist start\`?): stop it, or set HOIST_PORT to a free port (0 picks one)`
            : `no permission to listen on port ${port}: set HOIST_PORT to a port above 1023`,
        ),
      );
    }
    throw err;
  };
  process.on("uncaughtException", onListenError);
  try {
    return await startLocal(env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  } finally {
    process.off("uncaughtException", onListenError);
  }
}
