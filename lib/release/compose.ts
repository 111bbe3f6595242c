import { readApp, type AppResult } from "../compose/app.ts";

/** The Compose file's conventional name, used in messages unless the caller names the file. */
export const COMPOSE_FILE = "docker-compose.yml";

/**
 * The release of `service` of a Compose file (without one, the service that takes traffic) and of
 * what it depends on: the application reader (lib/compose/app.ts) limited to that service.
 */
export async function readReleaseSpec(
  composeText: string,
  service: string | undefined,
  file: string = COMPOSE_FILE,
  variables: Readonly<Record<string, string>> = {},
): Promise<AppResult> {
  return readApp(composeText, { file, variables, routed: service, only: service === undefined ? undefined : [service] });
}
