import * as z from "zod";
import { Bad, command, duration, flag, leaf, parseBytes, portRange, serviceShape, text } from "./service-schema.ts";
import type { DependencyCondition, Mount } from "../release/app-spec.ts";

/**
 * Schema of the keys of a Compose service that make it part of an application (depends_on,
 * volumes, networks, labels, ...), beside those a release description reads (compose-schema.ts).
 * Same conventions: loose mappings, `null` is "not set", each mistake reported at its own path.
 */

const list =
  <T>(item: (v: unknown) => T | Bad, what: string) =>
  (v: unknown): T[] | Bad => {
    if (!Array.isArray(v)) return new Bad(`expected a list of ${what}`);
    const out: T[] = [];
    for (const [i, x] of v.entries()) {
      const r = item(x);
      if (r instanceof Bad) return new Bad(r.message, [i, ...r.path]);
      out.push(r);
    }
    return out;
  };

const strings = (what: string) => list(text, what);

/** A string, or a list of them (Compose's "string or list" fields: tmpfs, env_file, dns). */
const oneOrMany = (what: string) => (v: unknown) => (typeof v === "string" ? [v] : strings(what)(v));

/** `[a, b]` or `{a: ..., b: ...}`: the names, in order (depends_on, networks). */
function namesOf(v: unknown, what: string): [string, unknown][] | Bad {
  if (Array.isArray(v)) {
    const bad = v.findIndex((n) => typeof n !== "string" || n === "");
    return bad >= 0 ? new Bad(`expected a ${what} name`, [bad]) : v.map((n: string) => [n, null]);
  }
  if (typeof v === "object" && v !== null) return Object.entries(v);
  return new Bad(`expected a list of ${what} names, or a mapping of them`);
}

const CONDITIONS = ["service_started", "service_healthy", "service_completed_successfully"] as const;

export interface DependsOnEntry {
  service: string;
  condition: DependencyCondition;
  /** `required: false`: a dependency that is not part of the app is left out rather than an error. */
  required: boolean;
}

const dependsOn = (v: unknown): DependsOnEntry[] | Bad => {
  const names = namesOf(v, "service");
  if (names instanceof Bad) return names;
  const out: DependsOnEntry[] = [];
  for (const [service, opts] of names) {
    if (opts === null || opts === undefined) {
      out.push({ service, condition: "service_started", required: true });
      continue;
    }
    if (typeof opts !== "object" || Array.isArray(opts)) return new Bad("expected a mapping with a condition", [service]);
    const o = opts as Record<string, unknown>;
    const condition = o.condition ?? "service_started";
    if (!(CONDITIONS as readonly unknown[]).includes(condition)) return new Bad(`expected one of ${CONDITIONS.join(", ")}`, [service, "condition"]);
    const required = o.required === undefined || o.required === null ? true : flag(o.required);
    if (required instanceof Bad) return new Bad(required.message, [service, "required"]);
    out.push({ service, condition: condition as DependencyCondition, required });
  }
  return out;
};

export interface NetworkEntry {
  network: string;
  aliases: string[];
}

const networks = (v: unknown): NetworkEntry[] | Bad => {
  const names = namesOf(v, "network");
  if (names instanceof Bad) return names;
  const out: NetworkEntry[] = [];
  for (const [network, opts] of names) {
    if (opts === null || opts === undefined) {
      out.push({ network, aliases: [] });
      continue;
    }
    if (typeof opts !== "object" || Array.isArray(opts)) return new Bad("expected a mapping", [network]);
    const raw = (opts as Record<string, unknown>).aliases;
    const aliases = raw === undefined || raw === null ? [] : strings("aliases")(raw);
    if (aliases instanceof Bad) return new Bad(aliases.message, [network, "aliases", ...aliases.path]);
    out.push({ network, aliases });
  }
  return out;
};

/** Compose's test for a volume source that is a host path rather than a volume's name. */
const isHostPath = (s: string) => s.startsWith("/") || s.startsWith(".") || s.startsWith("~") || /^[A-Za-z]:[\\/]/.test(s);

const VOLUME_MODES = new Set(["ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated", "shared", "rshared", "slave", "rslave", "private", "rprivate"]);

/** A container path: absolute, as Docker requires. */
const containerPath = (s: unknown): string | Bad => (typeof s === "string" && s.startsWith("/") ? s : new Bad("expected an absolute path in the container"));

function shortVolume(s: string): Mount | Bad {
  const parts = s.split(":");
  if (parts.length > 3 || parts.some((p) => p === "")) return new Bad('expected "[SOURCE:]TARGET[:MODE]", such as "data:/var/lib/data" or "/cache"');
  if (parts.length === 1) {
    const target = containerPath(parts[0]);
    return target instanceof Bad ? target : { type: "anonymous", target };
  }
  const [source, rawTarget, mode = "rw"] = parts as [string, string, string?];
  const target = containerPath(rawTarget);
  if (target instanceof Bad) return target;
  const modes = mode.split(",");
  const unknown = modes.find((m) => !VOLUME_MODES.has(m));
  if (unknown) return new Bad(`unknown volume mode "${unknown}" (expected ro or rw, and Docker's z, Z, nocopy, ...)`);
  const readOnly = modes.includes("ro");
  return isHostPath(source) ? { type: "bind", source, target, readOnly } : { type: "volume", source, target, readOnly };
}

function longVolume(v: Record<string, unknown>): Mount | Bad {
  const type = v.type;
  const target = containerPath(v.target);
  if (target instanceof Bad) return new Bad(target.message, ["target"]);
  const readOnly = v.read_only === undefined || v.read_only === null ? false : flag(v.read_only);
  if (readOnly instanceof Bad) return new Bad(readOnly.message, ["read_only"]);
  const source = v.source ?? undefined;
  if (source !== undefined && typeof source !== "string") return new Bad("expected a string", ["source"]);
  switch (type) {
    case "volume":
      return source ? { type: "volume", source, target, readOnly } : { type: "anonymous", target };
    case "bind":
      return source ? { type: "bind", source, target, readOnly } : new Bad("a bind mount needs a source", ["source"]);
    case "tmpfs": {
      const size = (v.tmpfs as { size?: unknown } | null | undefined)?.size;
      const bytes = size === undefined || size === null ? undefined : typeof size === "number" ? size : typeof size === "string" ? parseBytes(size) : undefined;
      if (size !== undefined && size !== null && bytes === undefined) return new Bad('expected a byte value such as "64m"', ["tmpfs", "size"]);
      return { type: "tmpfs", target, ...(bytes !== undefined ? { sizeBytes: bytes } : {}) };
    }
    default:
      return new Bad(`expected a type of volume, bind or tmpfs${typeof type === "string" ? ` (${type} mounts are not supported)` : ""}`, ["type"]);
  }
}

const volume = (v: unknown): Mount | Bad => {
  if (typeof v === "string") return shortVolume(v);
  if (typeof v === "object" && v !== null && !Array.isArray(v)) return longVolume(v as Record<string, unknown>);
  return new Bad('expected "[SOURCE:]TARGET[:MODE]" or a mapping with type, source and target');
};

const tmpfs = (v: unknown): Mount[] | Bad => {
  const targets = oneOrMany("container paths")(v);
  if (targets instanceof Bad) return targets;
  const out: Mount[] = [];
  for (const [i, t] of targets.entries()) {
    // `/run:size=64m,mode=1777`: the options are Docker's and pass as they are, but for the size.
    const [path, opts = ""] = t.split(/:(.*)/s) as [string, string?];
    const target = containerPath(path);
    if (target instanceof Bad) return new Bad(target.message, [i]);
    const size = /(?:^|,)size=([^,]+)/.exec(opts)?.[1];
    const bytes = size === undefined ? undefined : parseBytes(size);
    if (size !== undefined && bytes === undefined) return new Bad(`"${size}" is not a size`, [i]);
    out.push({ type: "tmpfs", target, ...(bytes !== undefined ? { sizeBytes: bytes } : {}) });
  }
  return out;
};

/** `{k: v}` or `["k=v", "k"]`: labels and extra hosts' shapes. */
const pairs = (sep: RegExp, what: string) => (v: unknown): Record<string, string> | Bad => {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    for (const [i, item] of v.entries()) {
      if (typeof item !== "string" || item === "") return new Bad(`expected "${what}"`, [i]);
      const m = sep.exec(item);
      out[m ? item.slice(0, m.index) : item] = m ? item.slice(m.index + m[0].length) : "";
    }
    return out;
  }
  if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      if (x !== null && typeof x !== "string" && typeof x !== "number" && typeof x !== "boolean") return new Bad("expected a string", [k]);
      out[k] = x === null ? "" : String(x);
    }
    return out;
  }
  return new Bad(`expected a mapping or a list of "${what}"`);
};

const labels = (v: unknown): Record<string, string> | Bad => {
  const read = pairs(/=/, "key=value")(v);
  if (read instanceof Bad) return read;
  // Hoist finds its own containers by these: a repository must not be able to pass one of its
  // services off as another's, or as another environment's.
  const reserved = Object.keys(read).find((k) => k.startsWith("hoist."));
  return reserved ? new Bad(`the label "${reserved}" is reserved: Hoist's own labels start with "hoist."`, [reserved]) : read;
};

/** `host:ip` as Docker takes it; compose also writes `host=ip` and the mapping form. */
const extraHosts = (v: unknown): string[] | Bad => {
  const read = pairs(/[=:]/, "host:ip")(v);
  return read instanceof Bad ? read : Object.entries(read).map(([h, ip]) => `${h}:${ip}`);
};

const expose = (v: unknown): number[] | Bad =>
  list((p: unknown) => {
    const range = typeof p === "number" || typeof p === "string" ? portRange(String(p).replace(/\/(tcp|udp|sctp)$/, "")) : undefined;
    return range ? range[0] : new Bad('expected a port or range such as "3000" or "8000-8010"');
  }, "ports")(v);

export interface EnvFileEntry {
  path: string;
  required: boolean;
}

const envFile = (v: unknown): EnvFileEntry[] | Bad => {
  if (typeof v === "string") return [{ path: v, required: true }];
  return list((e: unknown): EnvFileEntry | Bad => {
    if (typeof e === "string") return { path: e, required: true };
    if (typeof e !== "object" || e === null || Array.isArray(e)) return new Bad("expected a path, or a mapping with path and required");
    const { path, required = true, format } = e as Record<string, unknown>;
    if (typeof path !== "string" || path === "") return new Bad("expected a path", ["path"]);
    if (format !== undefined && format !== null && format !== "raw") return new Bad(`expected format "raw" or none`, ["format"]);
    const r = flag(required);
    return r instanceof Bad ? new Bad(r.message, ["required"]) : { path, required: r };
  }, "env files")(v);
};

/** What a Compose build section says, compared between services: equal ones build one image. */
const build = (v: unknown): string | Bad => {
  if (typeof v === "string") return JSON.stringify({ context: v });
  if (typeof v !== "object" || v === null || Array.isArray(v)) return new Bad("expected a context path, or a mapping with context, dockerfile, args and target");
  const { context = ".", dockerfile, target, args } = v as Record<string, unknown>;
  return JSON.stringify({ context, dockerfile, target, args });
};

export interface RestartPolicy {
  name: "no" | "always" | "on-failure" | "unless-stopped";
  /** `on-failure:N`: give up after N restarts. */
  maxRetries?: number;
}

const restart = (v: unknown): RestartPolicy | Bad => {
  const m = typeof v === "string" ? /^(no|always|unless-stopped|on-failure(?::(\d{1,4}))?)$/.exec(v) : null;
  if (!m) return new Bad('expected one of no, always, on-failure, on-failure:N, unless-stopped');
  return m[2] !== undefined ? { name: "on-failure", maxRetries: Number(m[2]) } : { name: m[1] as RestartPolicy["name"] };
};

export interface SecretRef {
  source: string;
  /** The file's name under /run/secrets (a config's, under /), or an absolute path. */
  target?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

/** A service's `secrets:` or `configs:` (the same long syntax). */
const fileRefs = (what: "secret" | "config") => list((v: unknown): SecretRef | Bad => {
  if (typeof v === "string" && v !== "") return { source: v };
  if (typeof v !== "object" || v === null || Array.isArray(v)) return new Bad(`expected a ${what}'s name, or a mapping with source and target`);
  const { source, target, mode, uid, gid } = v as Record<string, unknown>;
  if (typeof source !== "string" || source === "") return new Bad(`expected the ${what}'s name`, ["source"]);
  if (target !== undefined && target !== null && (typeof target !== "string" || target === "" || target.includes(".."))) return new Bad("expected a file name or an absolute path", ["target"]);
  // `mode: 0440` is octal to Compose (Go's YAML), a YAML 1.2 reader sees 440: a number written
  // with octal digits only is taken as octal, one with an 8 or 9 (288) as the decimal it is.
  const m = mode === undefined || mode === null ? undefined : typeof mode === "number" ? (/^[0-7]{1,4}$/.test(String(mode)) ? parseInt(String(mode), 8) : mode) : typeof mode === "string" && /^0?[0-7]{3}$/.test(mode) ? parseInt(mode, 8) : NaN;
  if (m !== undefined && !(Number.isInteger(m) && m >= 0 && m <= 0o777)) return new Bad('expected a file mode such as 0440 or "0440"', ["mode"]);
  const owner = (v: unknown): number | undefined | Bad =>
    v === undefined || v === null ? undefined : /^\d{1,9}$/.test(String(v)) ? Number(v) : new Bad("expected a numeric id, such as 1000");
  const u = owner(uid);
  const g = owner(gid);
  if (u instanceof Bad) return new Bad(u.message, ["uid"]);
  if (g instanceof Bad) return new Bad(g.message, ["gid"]);
  return { source, ...(typeof target === "string" ? { target } : {}), ...(m !== undefined ? { mode: m } : {}), ...(u !== undefined ? { uid: u } : {}), ...(g !== undefined ? { gid: g } : {}) };
}, `${what}s`);

/** The keys of a service that make it part of an application, as read here. */
export const appShape = {
  build: leaf(build),
  depends_on: leaf(dependsOn),
  volumes: leaf(list(volume, "volumes")),
  tmpfs: leaf(tmpfs),
  networks: leaf(networks),
  labels: leaf(labels),
  expose: leaf(expose),
  env_file: leaf(envFile),
  profiles: leaf(strings("profile names")),
  restart: leaf(restart),
  entrypoint: leaf(command),
  user: leaf(text),
  working_dir: leaf(text),
  stop_signal: leaf(text),
  stop_grace_period: leaf(duration),
  read_only: leaf(flag),
  extra_hosts: leaf(extraHosts),
  privileged: leaf(flag),
  cap_add: leaf(strings("capabilities")),
  cap_drop: leaf(strings("capabilities")),
  secrets: leaf(fileRefs("secret")),
  configs: leaf(fileRefs("config")),
};

/** A service as the application reader sees it: both shapes, everything else left as it is. */
export const AppServiceFields = z.looseObject({ ...serviceShape, ...appShape }, { error: "expected a mapping" });
export type AppServiceFields = z.output<typeof AppServiceFields>;
