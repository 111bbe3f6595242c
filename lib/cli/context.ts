import type { CliConfig } from "../config.ts";
import type { HoistClient } from "./client.ts";
import type { Output } from "./output.ts";

/** The Hoist a command talks to. */
export interface Target {
  url: string;
  token: string | undefined;
  /** Named by --url or HOIST_URL, rather than the local default. */
  remote: boolean;
}

/** What every command group is handed by main.ts. */
export interface CliContext {
  cli: CliConfig;
  out: Output;
  /** Read when a command runs, after commander parsed the global options. */
  target(): Target;
  client(): HoistClient;
}

/** Points the user at the script that starts what runs need on this machine. */
export const SERVICES_HINT = "run `bash scripts/services.sh` to start the Docker engine, the registry and the base images";
