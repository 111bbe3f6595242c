import { interpolate } from "../compose/interpolate.ts";
import { readYamlFile } from "../yaml/isolate.ts";
import { COMPOSE_FILE_LIMITS } from "../yaml/limits.ts";
import { at, describeIssues, lineAt } from "../yaml/locate.ts";
import { ignoredKeys } from "./compose-ignored.ts";
import { ComposeService } from "./compose-schema.ts";
import type { ReleaseSpec } from "./spec.ts";

// The release spec's types live in spec.ts; re-exported for the modules that still import them from here.

/**
 * A release spec, and warnings (`file:line: ...`): each variable used without a value, then each
 * Compose key Hoist does not act on yet.
 */
export type ComposeResult = { ok: true; spec: ReleaseSpec; warnings: string[] } | { ok: false; error: string };

/** The Compose file's conventional name, used in messages unless the caller names the file. */
export const COMPOSE_FILE = "docker-compose.yml";

/**
 * Reads the release description of `service` from a Compose file, through the bounded, isolated
 * YAML reader. Never rejects: a broken file gives an error naming the line and the field
 * (`docker-compose.yml:7: services.web.deploy.replicas: expected a whole number ≥ 0`), a missing
 * service lists the services there are. Without a `service`, the file's only service is read.
 *
 * YAML 1.2 (as Compose reads it: `80:8080` is a string, `yes` too) plus `<<` merge keys, which
 * Compose files use with `x-*` anchors. Duplicate keys are an error, as in Compose.
 *
 * Every value is interpolated with `variables` before anything is read, as Compose does
 * (`${TAG:-latest}`); a variable without a value becomes "" and a warning.
 */
export async function readReleaseSpec(
  composeText: string,
  service: string | undefined,
  file: string = COMPOSE_FILE,
  variables: Readonly<Record<string, string>> = {},
): Promise<ComposeResult> {
  const read = await readYamlFile(composeText, { file, limits: COMPOSE_FILE_LIMITS, merge: true });
  if (!read.ok) return read;
  const { lines } = read;
  // hasOwn: a variable named "constructor" is not set unless it is.
  const interpolated = interpolate(read.value, (name) => (Object.hasOwn(variables, name) ? variables[name] : undefined));
  if (!interpolated.ok) return { ok: false, error: at(file, lineAt(lines, interpolated.path), interpolated.error) };
  const root = interpolated.value;
  const unset = interpolated.unset
    .map(({ name, path }) => ({ line: lineAt(lines, path), name }))
    .sort((a, b) => a.line - b.line)
    .map(({ line, name }) => at(file, line, `the "${name}" variable is not set: defaulting to a blank string`));

  if (root !== null && !isPlainObject(root)) return { ok: false, error: at(file, lineAt(lines, []), '(file): expected a mapping with a "services" key') };
  const services = isPlainObject(root) ? root.services : undefined;
  if (services !== undefined && services !== null && !isPlainObject(services))
    return { ok: false, error: at(file, lineAt(lines, ["services"]), "services: expected a mapping of service names to services") };
  const names = isPlainObject(services) ? Object.keys(services) : [];
  if (service === undefined) {
    if (names.length !== 1) return { ok: false, error: `${file} has ${names.length ? `several services (${names.join(", ")})` : "no services"}: name one with deploy.service` };
    service = names[0]!;
  }
  if (!isPlainObject(root) || !isPlainObject(services) || !Object.hasOwn(services, service))
    return { ok: false, error: at(file, undefined, `no service "${service}" (${names.length ? `services: ${names.join(", ")}` : "the file declares no services"})`) };

  const result = ComposeService.safeParse(services[service]);
  if (!result.success) return { ok: false, error: describeIssues(file, lines, result.error.issues, ["services", service]) };
  return { ok: true, spec: { service, ...result.data }, warnings: [...unset, ...ignoredKeys(root, service, lines, file)] };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
