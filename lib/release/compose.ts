import { readYamlFile } from "../yaml/isolate.ts";
import { COMPOSE_FILE_LIMITS } from "../yaml/limits.ts";
import { at, describeIssues, lineAt } from "../yaml/locate.ts";
import { ignoredKeys } from "./compose-ignored.ts";
import { ComposeService } from "./compose-schema.ts";
import type { ReleaseSpec } from "./spec.ts";

// The release spec's types live in spec.ts; re-exported for the modules that still import them from here.

/** A release spec, and a warning for each Compose key Hoist does not act on yet (`file:line: ...`). */
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
 */
export async function readReleaseSpec(composeText: string, service: string | undefined, file: string = COMPOSE_FILE): Promise<ComposeResult> {
  const read = await readYamlFile(composeText, { file, limits: COMPOSE_FILE_LIMITS, merge: true });
  if (!read.ok) return read;
  const { value: root, lines } = read;

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
  return { ok: true, spec: { service, ...result.data }, warnings: ignoredKeys(root, service, lines, file) };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
