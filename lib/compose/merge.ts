/**
 * Compose's merge rules (the specification's "Merge and override"), for `extends` and for
 * several files (`docker compose -f a.yml -f b.yml`): the later value wins a scalar; mappings
 * merge key by key; a sequence merges as Compose says for its key (appended without duplicates,
 * merged by name or by target path, or replaced). Written here because no maintained JavaScript
 * library implements Compose's merge; compose-go's is Go.
 */

import { OVERRIDE, RESET } from "../yaml/read.mjs";

type Value = unknown;
type Mapping = Record<string, Value>;

/** A YAML mapping (not a list, not null). */
export const isMapping = (v: Value): v is Mapping => typeof v === "object" && v !== null && !Array.isArray(v);

/** Sequences appended, each value once. */
const APPENDED = new Set(["ports", "expose", "dns", "dns_search", "dns_opt", "tmpfs", "external_links", "cap_add", "cap_drop", "profiles", "security_opt", "group_add", "env_file"]);
/** Sequences of `KEY=value` or mappings, merged by key. */
const BY_KEY = new Set(["environment", "labels", "annotations", "sysctls", "extra_hosts", "build.args", "deploy.labels", "driver_opts"]);
/** Sequences of names or mappings of names, merged by name. */
const BY_NAME = new Set(["networks", "depends_on", "links"]);
/** Mounts merged by their path in the container. */
const BY_TARGET = new Set(["volumes", "devices", "secrets", "configs"]);
/** Replaced whole. */
const REPLACED = new Set(["command", "entrypoint", "healthcheck.test"]);

/** `base` overridden by `over`, a service (or any mapping under `path`) as Compose merges them. */
export function mergeService(base: Mapping, over: Mapping, path = ""): Mapping {
  const out: Mapping = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const here = path ? `${path}.${key}` : key;
    const prev = out[key];
    // `!reset`: as if nothing had set it; `!override`: this value, not merged with the earlier one.
    if (isMapping(value) && Object.hasOwn(value, RESET)) delete out[key];
    else if (isMapping(value) && Object.hasOwn(value, OVERRIDE)) out[key] = value[OVERRIDE];
    else if (prev === undefined || prev === null || value === null || REPLACED.has(here)) out[key] = value;
    else if (APPENDED.has(here) && Array.isArray(prev) && Array.isArray(value)) out[key] = unique([...prev, ...value]);
    else if (BY_KEY.has(here)) out[key] = { ...asMap(prev, "="), ...asMap(value, "=") };
    else if (BY_NAME.has(here)) out[key] = mergeService(asNames(prev), asNames(value), here);
    else if (BY_TARGET.has(here) && Array.isArray(prev) && Array.isArray(value)) out[key] = byTarget(prev, value, key);
    else if (isMapping(prev) && isMapping(value)) out[key] = mergeService(prev, value, here);
    else out[key] = value;
  }
  return out;
}

function unique(items: Value[]): Value[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = JSON.stringify(i);
    return !seen.has(k) && seen.add(k);
  });
}

/** A list of `KEY=value` (or `KEY`) as a mapping; a mapping as it is. */
function asMap(v: Value, sep: string): Mapping {
  if (isMapping(v)) return v;
  if (!Array.isArray(v)) return {};
  const out: Mapping = {};
  for (const item of v) {
    if (typeof item !== "string") continue;
    const at = item.indexOf(sep);
    out[at < 0 ? item : item.slice(0, at)] = at < 0 ? null : item.slice(at + 1);
  }
  return out;
}

/** `[a, b]` as `{a: null, b: null}`; a mapping as it is. */
function asNames(v: Value): Mapping {
  if (isMapping(v)) return v;
  return Array.isArray(v) ? Object.fromEntries(v.filter((n): n is string => typeof n === "string").map((n) => [n, null])) : {};
}

/** The container path a mount entry is for (a secret's or config's file name). */
function targetOf(item: Value, key: string): string {
  if (typeof item === "string") {
    if (key === "secrets" || key === "configs") return item;
    const parts = item.split(":");
    return parts.length === 1 ? parts[0]! : parts[1]!;
  }
  if (isMapping(item)) return String(item.target ?? item.source ?? JSON.stringify(item));
  return JSON.stringify(item);
}

function byTarget(prev: Value[], next: Value[], key: string): Value[] {
  const out = new Map<string, Value>();
  for (const item of [...prev, ...next]) out.set(targetOf(item, key), item);
  return [...out.values()];
}

/** A value with the `!reset` / `!override` markers a merge did not meet taken out: reset keys removed, overrides unwrapped. */
export function settle(v: Value): Value {
  if (Array.isArray(v)) return v.map(settle);
  if (!isMapping(v)) return v;
  if (Object.hasOwn(v, OVERRIDE)) return settle(v[OVERRIDE]);
  const out: Mapping = {};
  for (const [k, x] of Object.entries(v)) if (!(isMapping(x) && Object.hasOwn(x, RESET))) out[k] = settle(x);
  return out;
}

/**
 * Files merged in order (`compose.yaml` then its override): services merged one by one as
 * above, the other top-level mappings (volumes, networks, secrets, configs) key by key.
 */
export function mergeFiles(files: Mapping[]): Mapping {
  let out: Mapping = {};
  for (const file of files) {
    for (const [key, value] of Object.entries(file)) {
      const prev = out[key];
      if (key === "services" && isMapping(prev) && isMapping(value)) {
        const services: Mapping = { ...prev };
        for (const [name, svc] of Object.entries(value))
          services[name] = isMapping(services[name]) && isMapping(svc) ? mergeService(services[name] as Mapping, svc) : svc;
        out = { ...out, services };
      } else out = { ...out, [key]: isMapping(prev) && isMapping(value) ? mergeService(prev, value, key) : value };
    }
  }
  return out;
}
