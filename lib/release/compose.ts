import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { z } from "zod";
import { ComposeService } from "./compose-schema.ts";

/**
 * A release, read from one service of the user's `docker-compose.yml`.
 *
 * Compose keys are read as the Compose Specification defines them (services, deploy, healthcheck);
 * Hoist's own settings live in the service-level extension `services.<name>.x-hoist` (see `hoist`).
 * Every key Compose allows but Hoist does not read (volumes, networks, labels, build, any `x-*` ...)
 * is ignored; a key Hoist reads with the wrong type or value is an error naming its line and path.
 *
 * Variable interpolation (`${VAR}`, `$VAR`, `$$`) is out of scope: text is kept exactly as written,
 * and a numeric field holding `${...}` is an error (with a hint) rather than a guess.
 */
export interface ReleaseSpec {
  service: string;
  /** `image:` as written; the deploy stage replaces it with the image the pipeline built. */
  image?: string;
  /**
   * The container command as argv, overriding the image's CMD. A list is kept as written. A string is
   * split into words the way Compose does it (Compose does not run a shell either): whitespace separates
   * words, '...' and "..." quote, backslash escapes. A string using shell syntax that splitting cannot
   * express (`|`, `&&`, `;`, `<`, `>`, `(`, backticks) is an error asking for `["sh", "-c", "..."]` or the
   * list form: Compose would silently drop everything from that operator on.
   * Absent or null: the image's CMD. `""` or `[]`: `[]`, i.e. the image's CMD overridden to nothing.
   */
  command?: string[];
  /**
   * Map form or `KEY=value` list form. Numbers and booleans become strings. A name without a value
   * (`USER_INPUT:` or `- USER_INPUT`) asks Compose to take it from the shell environment, which is
   * interpolation: such names are left out (unset), as Compose does when the shell has no value.
   */
  environment: Record<string, string>;
  /** The container port the router sends traffic to: x-hoist.port, else the first ports entry's target, else error. */
  port: number;
  /** `deploy.replicas`, default 1. */
  replicas: number;
  /** `deploy.update_config`. */
  update: UpdatePolicy;
  /** `deploy.rollback_config` (its failure_action is `continue` or `pause` only, per the spec). */
  rollback: UpdatePolicy;
  /** `deploy.resources.limits`; a limit of 0 means "no limit" and is left out. */
  resources: { cpus?: number; memoryBytes?: number };
  /**
   * `healthcheck:` in Docker's terms. A string test becomes `["CMD-SHELL", test]`; `disable: true` becomes
   * `["NONE"]` (Docker's way of switching off the image's HEALTHCHECK); a healthcheck without `test` gets
   * `[]` (Docker: keep the image's test). Unset durations and retries take the Dockerfile HEALTHCHECK
   * defaults: interval 30s, timeout 30s, start period 0s, retries 3. Absent when no `healthcheck:` is set.
   */
  healthcheck?: HealthcheckSpec;
  /** `services.<name>.x-hoist`: Hoist's release settings. */
  hoist: HoistSettings;
}

/**
 * `update_config` / `rollback_config`. Defaults (Docker's `docker service` defaults, which the spec follows
 * except for monitor, where the spec text says 0s and Docker Swarm uses 5s): parallelism 1 (0 = all at once),
 * delay 0s, failure_action pause, monitor 5s, max_failure_ratio 0, order stop-first.
 */
export interface UpdatePolicy {
  parallelism: number;
  delayMs: number;
  order: "stop-first" | "start-first";
  failureAction: "rollback" | "pause" | "continue";
  monitorMs: number;
  maxFailureRatio: number;
}

export interface HealthcheckSpec {
  /** Docker's form: `[]`, `["NONE"]`, `["CMD", ...args]` or `["CMD-SHELL", command]`. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/**
 * The `x-hoist` extension, read from the service (`services.<name>.x-hoist`), in Compose's snake_case:
 *
 * ```yaml
 * services:
 *   web:
 *     x-hoist:
 *       port: 8080                  # else the first ports entry's target
 *       strategy: canary            # rolling (default) | blue-green | canary
 *       steps: [5, 25, 100]         # canary weights in percent
 *       interval: 1m                # between canary steps: "1m30s" or seconds (90)
 *       health: { path: /healthz, status: 204, timeout: 2s, interval: 1s, retries: 30 }
 *       error_threshold: 0.02
 *       drain: 10s
 *       route: { backend: web_be }
 * ```
 *
 * A top-level `x-hoist:` is not read: Compose extensions at the top level are commonly YAML anchors
 * (`x-hoist: &hoist ...` then `x-hoist: *hoist` in each service), so it is left alone like any `x-*` key.
 * Durations take Go-style strings ("500ms", "1m30s") or a number of seconds. Unknown keys are errors.
 */
export interface HoistSettings {
  /** Default rolling. */
  strategy: "rolling" | "blue-green" | "canary";
  /** Canary weights in percent: strictly increasing, each 1..100, the last 100. Default [10, 50, 100]. */
  steps: number[];
  /** Between canary steps; default 30s. */
  intervalMs: number;
  /** The HTTP check the router gate uses. Defaults: path "/", status 200, timeout 2s, interval 1s, retries 30. */
  health: { path: string; status: number; timeoutMs: number; intervalMs: number; retries: number };
  /** Canary aborts when its 5xx ratio exceeds the stable one's by more than this (0..1); default 0.05. */
  errorThreshold: number;
  /** Grace period before old instances stop; default 5s. */
  drainMs: number;
  /** HAProxy backend name override. */
  route?: { backend?: string };
}

export type ComposeResult = { ok: true; spec: ReleaseSpec } | { ok: false; error: string };

/** The Compose file's conventional name, used in messages unless the caller names the file. */
export const COMPOSE_FILE = "docker-compose.yml";

/**
 * Reads the release description of `service` from a Compose file. Never throws: a broken file gives an
 * error naming the line and the field (`docker-compose.yml:7: services.web.deploy.replicas: expected a
 * whole number ≥ 0`), a missing service lists the services there are. Without a `service`, the
 * file's only service is read.
 */
export function readReleaseSpec(composeText: string, service: string | undefined, file: string = COMPOSE_FILE): ComposeResult {
  const lines = new LineCounter();
  // YAML 1.2 (as Compose reads it: `80:8080` is a string, `yes` too) plus `<<` merge keys, which Compose
  // files use with `x-*` anchors. Duplicate keys are an error, as in Compose.
  const doc = parseDocument(composeText, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0].line ?? lines.linePos(yamlError.pos[0]).line;
    return { ok: false, error: `${file}:${line}: invalid YAML: ${firstLine(yamlError.message)}` };
  }
  let root: unknown;
  try {
    root = doc.toJS();
  } catch (e) {
    // e.g. an alias to an unknown anchor, or too many alias expansions
    return { ok: false, error: `${file}:1: invalid YAML: ${firstLine(e instanceof Error ? e.message : String(e))}` };
  }

  const where = (path: readonly (string | number)[]) => `${file}:${lineOf(doc, path, lines)}`;
  if (root !== null && root !== undefined && !isPlainObject(root)) return { ok: false, error: `${where([])}: (file): expected a mapping with a "services" key` };
  const services = isPlainObject(root) ? root.services : undefined;
  if (services !== undefined && services !== null && !isPlainObject(services))
    return { ok: false, error: `${where(["services"])}: services: expected a mapping of service names to services` };
  const names = isPlainObject(services) ? Object.keys(services) : [];
  if (service === undefined) {
    if (names.length !== 1) return { ok: false, error: `${file} has ${names.length ? `several services (${names.join(", ")})` : "no services"}: name one with deploy.service` };
    service = names[0]!;
  }
  if (!isPlainObject(services) || !Object.hasOwn(services, service))
    return { ok: false, error: `${file}: no service "${service}" (${names.length ? `services: ${names.join(", ")}` : "the file declares no services"})` };

  const result = ComposeService.safeParse(services[service]);
  if (result.success) return { ok: true, spec: { service, ...result.data } };
  const messages = result.error.issues.slice(0, 5).map((issue) => describeIssue(issue, ["services", service], doc, lines, file));
  return { ok: false, error: messages.join("; ") };
}

function describeIssue(issue: z.core.$ZodIssue, prefix: readonly string[], doc: Document, lines: LineCounter, file: string): string {
  const path = [...prefix, ...issue.path.filter((p): p is string | number => typeof p !== "symbol")];
  let message = issue.message;
  if (issue.code === "unrecognized_keys") message = `unknown field ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  return `${file}:${lineOf(doc, path, lines)}: ${formatPath(path)}: ${message}`;
}

/**
 * The line of the deepest node on `path` that exists (a missing key points at its parent). Follows
 * aliases and `<<` merge keys, so a value that came from an anchor points at the anchor's text.
 */
function lineOf(doc: Document, path: readonly (string | number)[], lines: LineCounter): number {
  let node: unknown = doc.contents;
  let best = (node as Node | null)?.range?.[0] ?? 0;
  for (const key of path) {
    const next = childOf(deref(node, doc), key, doc, 0);
    if (!next) break;
    best = next.at ?? best;
    node = next.node;
  }
  return lines.linePos(best).line;
}

function childOf(node: unknown, key: string | number, doc: Document, depth: number): { at?: number; node: unknown } | undefined {
  if (depth > 20) return undefined;
  if (isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && !isMergeKey(p.key.value) && String(p.key.value) === String(key));
    if (pair) return { at: (pair.key as Node).range?.[0], node: pair.value };
    // Explicit keys win over merged ones; among merged sources, the first that has the key wins.
    for (const p of node.items) {
      if (!isScalar(p.key) || !isMergeKey(p.key.value)) continue;
      const sources = deref(p.value, doc);
      for (const source of isSeq(sources) ? sources.items : [sources]) {
        const found = childOf(deref(source, doc), key, doc, depth + 1);
        if (found) return found;
      }
    }
  } else if (isSeq(node) && typeof key === "number") {
    const item = node.items[key];
    if (item !== undefined) return { at: (item as Node | null)?.range?.[0], node: item };
  }
  return undefined;
}

function deref(node: unknown, doc: Document): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function isMergeKey(value: unknown): boolean {
  return value === "<<" || (typeof value === "symbol" && value.description === "<<");
}

function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
