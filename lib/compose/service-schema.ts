import { parseDuration } from "../duration.ts";
import { STRATEGIES } from "../pipeline/strategy.ts";
import { isIP } from "node:net";
import * as z from "zod";
import type { HealthcheckSpec, HoistSettings, ReleaseSpec, Route, UpdatePolicy } from "../release/spec.ts";

/**
 * Schema of the parts of a Compose service that Hoist reads (Compose Specification: services, deploy,
 * healthcheck; durations and byte values per its "Specifying durations / byte values").
 *
 * Compose mappings are loose: keys Hoist does not read are ignored, whatever they hold (the loader warns
 * about each, from `SERVICE_KEYS_READ`). Leaves are parsed
 * by small readers so each mistake is reported at its own path with a plain message. `null` means "not
 * set" throughout, as in Compose (`deploy:` with nothing after it, `command: null`).
 * Values arrive interpolated (lib/compose/interpolate.ts): `replicas: ${N:-2}` is read as "2".
 */

type Path = readonly (string | number)[];

/** A reader's complaint; `path` is relative to the value being read. */
export class Bad {
  constructor(
    readonly message: string,
    readonly path: Path = [],
  ) {}
}

/** A leaf read by `read`; null and absent give undefined. */
export function leaf<T>(read: (v: unknown) => T | Bad) {
  return z.unknown().transform((v, ctx): T | undefined => {
    if (v === undefined || v === null) return undefined;
    const r = read(v);
    if (r instanceof Bad) {
      ctx.addIssue({ code: "custom", message: r.message, path: [...r.path], input: v });
      return z.NEVER;
    }
    return r;
  }).optional();
}

/** A Compose mapping where null or absent means "all defaults". */
export const mapping = <S extends z.core.$ZodLooseShape>(shape: S) =>
  z.preprocess((v) => v ?? {}, z.looseObject(shape, { error: "expected a mapping" }));

/** A Hoist mapping (inside x-hoist): unknown keys are mistakes. */
const strictMapping = <S extends z.core.$ZodLooseShape>(shape: S) =>
  z.preprocess((v) => v ?? {}, z.strictObject(shape, { error: "expected a mapping" }));

// ---- scalars ----------------------------------------------------------------------------------

/** Compose's numeric fields also take strings (for interpolation): "3" is read as 3. */
export function numberFrom(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^\s*\d+(\.\d+)?\s*$/.test(v)) return Number(v);
  return undefined;
}

export const whole =
  (min: number, max?: number, composeStrings = true) =>
  (v: unknown): number | Bad => {
    const n = composeStrings ? numberFrom(v) : typeof v === "number" ? v : undefined;
    if (n !== undefined && Number.isSafeInteger(n) && n >= min && (max === undefined || n <= max)) return n;
    const range = max === undefined ? `≥ ${min}` : `from ${min} to ${max}`;
    return new Bad(`expected a whole number ${range}`);
  };

const ratio =
  (composeStrings = true) =>
  (v: unknown): number | Bad => {
    const n = composeStrings ? numberFrom(v) : typeof v === "number" ? v : undefined;
    if (n !== undefined && n >= 0 && n <= 1) return n;
    return new Bad("expected a ratio from 0 to 1");
  };

export const oneOf =
  <const T extends readonly string[]>(values: T) =>
  (v: unknown): T[number] | Bad =>
    typeof v === "string" && values.includes(v) ? (v as T[number]) : new Bad(`expected one of ${values.join(", ")}`);

export const text = (v: unknown): string | Bad => (typeof v === "string" ? v : new Bad("expected a string"));


/** A Compose duration field: a string only (the spec's schema types them as strings). */
export const duration = (v: unknown): number | Bad => {
  const ms = typeof v === "string" ? parseDuration(v) : undefined;
  return ms ?? new Bad(`expected a duration such as "10s" or "1m30s"`);
};

/** An x-hoist duration: a Go-style string or a number of seconds. */
const hoistDuration =
  (positive = false) =>
  (v: unknown): number | Bad => {
    const ms = typeof v === "string" ? parseDuration(v) : typeof v === "number" && v >= 0 && Number.isFinite(v) ? Math.round(v * 1000) : undefined;
    if (ms !== undefined && (!positive || ms > 0)) return ms;
    return new Bad(`expected a${positive ? " positive" : ""} duration such as "30s", "1m30s" or a number of seconds`);
  };

const BYTE_UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * A Compose byte value ("512M", "1gb", "300m", "2048k", "1.5g", "2b"): case-insensitive, binary multiples,
 * an optional "i" and "b" (Docker's RAMInBytes, which Compose uses). Undefined when it is not one.
 */
export function parseBytes(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(s);
  if (!m) return undefined;
  const bytes = Math.trunc(Number(m[1]) * (BYTE_UNITS[(m[2] ?? "").toLowerCase()] ?? NaN));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const memory = (v: unknown): number | Bad => {
  const n = typeof v === "number" ? (Number.isSafeInteger(v) && v >= 0 ? v : undefined) : typeof v === "string" ? parseBytes(v) : undefined;
  return n ?? new Bad(`expected a byte value such as "512M" or "1G"`);
};

const cpus = (v: unknown): number | Bad => {
  const n = numberFrom(v);
  return n !== undefined && Number.isFinite(n) && n >= 0 ? n : new Bad(`expected a number of CPUs such as 0.5 or "1.5"`);
};

// ---- command ----------------------------------------------------------------------------------

/**
 * Splits a command string into words as Compose does (it does not run a shell): blanks separate words,
 * '...' is literal, "..." is literal but for \" \\ \$ \`, and a backslash outside quotes escapes the next
 * character. Shell syntax that needs a shell (`|`, `&`, `;`, `<`, `>`, `(`, `)`, backticks) is refused
 * rather than passed as words or dropped: the user should write a list or `["sh", "-c", "..."]`.
 */
export function splitCommand(s: string): string[] | Bad {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\" && i + 1 < s.length && '"\\$`\n'.includes(s[i + 1] as string)) {
        i++;
        if (s[i] !== "\n") word += s[i];
      } else word += c;
    } else if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\") {
      if (i + 1 >= s.length) return new Bad("ends with a lone backslash");
      i++;
      if (s[i] !== "\n") {
        word += s[i];
        inWord = true;
      }
    } else if ("|&;<>()`".includes(c)) {
      return new Bad(`uses shell syntax (${c}) but Compose runs no shell: write the command as a list, or as ["sh", "-c", "..."]`);
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) return new Bad(`has an unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

export const command = (v: unknown): string[] | Bad => {
  if (typeof v === "string") return splitCommand(v);
  if (!Array.isArray(v)) return new Bad("expected a string or a list of strings");
  const bad = v.findIndex((w) => typeof w !== "string");
  return bad < 0 ? (v as string[]) : new Bad("expected a string", [bad]);
};

// ---- environment ------------------------------------------------------------------------------

/** Map form (`KEY: value`, scalars become strings) or list form (`- KEY=value`); names without a value are left out. */
export const environment = (v: unknown): Record<string, string> | Bad => {
  const entries: [string, string][] = [];
  if (Array.isArray(v)) {
    for (const [i, item] of v.entries()) {
      if (typeof item !== "string" || item.startsWith("=") || item === "") return new Bad('expected "NAME=value"', [i]);
      const eq = item.indexOf("=");
      if (eq > 0) entries.push([item.slice(0, eq), item.slice(eq + 1)]);
    }
  } else if (typeof v === "object" && v !== null) {
    for (const [name, value] of Object.entries(v)) {
      if (value === null) continue;
      if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") return new Bad("expected a string, number or boolean", [name]);
      entries.push([name, String(value)]);
    }
  } else return new Bad('expected a mapping of names to values or a list of "NAME=value"');
  return Object.fromEntries(entries);
};

// ---- ports ------------------------------------------------------------------------------------

/** What Hoist keeps of a ports entry: the container port (or range) and its protocol. */
export interface PortEntry {
  target: number;
  targetEnd: number;
  protocol: string;
}

const PROTOCOLS = ["tcp", "udp", "sctp"] as const;
const SHORT_PORT = 'expected a port such as "8080", "80:8080" or "127.0.0.1:80:8080/tcp"';

export function portRange(s: string): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  return start >= 1 && end <= 65535 && start <= end ? [start, end] : undefined;
}

/** Short syntax: `[[IP:](port|range|"")]:](port|range)[/protocol]`, IPv6 bare or in brackets. */
export function parseShortPort(s: string): PortEntry | Bad {
  const slash = s.lastIndexOf("/");
  const protocol = slash < 0 ? "tcp" : s.slice(slash + 1);
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) return new Bad(`${SHORT_PORT}; protocol must be one of ${PROTOCOLS.join(", ")}`);
  const rest = slash < 0 ? s : s.slice(0, slash);
  const colon = rest.lastIndexOf(":");
  const target = portRange(rest.slice(colon + 1));
  if (!target) return new Bad(SHORT_PORT);
  if (colon >= 0) {
    const host = rest.slice(0, colon);
    const c = host.lastIndexOf(":");
    const hostPort = host.slice(c + 1);
    const ip = c < 0 ? undefined : host.slice(0, c).replace(/^\[(.*)\]$/, "$1");
    if (ip !== undefined && !isIP(ip)) return new Bad(`${SHORT_PORT}; "${ip}" is not an IP address`);
    if (hostPort === "" && ip === undefined) return new Bad(SHORT_PORT);
    if (hostPort !== "") {
      const published = portRange(hostPort);
      if (!published) return new Bad(SHORT_PORT);
      const [hs, he] = published;
      if (target[1] !== target[0] && he - hs !== target[1] - target[0])
        return new Bad(`the host range ${hostPort} and the container range ${target[0]}-${target[1]} differ in size`);
    }
  }
  return { target: target[0], targetEnd: target[1], protocol };
}

const portNumber = (v: unknown): number | Bad => {
  const range = typeof v === "number" ? (Number.isInteger(v) ? portRange(String(v)) : undefined) : typeof v === "string" ? portRange(v) : undefined;
  return range && range[0] === range[1] ? range[0] : new Bad("expected a port number from 1 to 65535");
};

const publishedPort = (v: unknown): string | Bad =>
  (typeof v === "number" || typeof v === "string") && portRange(String(v)) ? String(v) : new Bad(`expected a port number or range such as "8080" or "8000-8010"`);

const hostIp = (v: unknown): string | Bad => (typeof v === "string" && isIP(v) ? v : new Bad("expected an IP address"));

/** Long syntax: `{ target, published, host_ip, protocol, mode, name, app_protocol }`. */
const LongPort = z
  .looseObject(
    {
      target: leaf(portNumber),
      published: leaf(publishedPort),
      host_ip: leaf(hostIp),
      protocol: leaf(oneOf(PROTOCOLS)),
      mode: leaf(oneOf(["host", "ingress"] as const)),
    },
    { error: "expected a port" },
  )
  .transform((p, ctx): PortEntry => {
    if (p.target === undefined) {
      ctx.addIssue({ code: "custom", path: ["target"], message: "expected a port number from 1 to 65535", input: p });
      return z.NEVER;
    }
    return { target: p.target, targetEnd: p.target, protocol: p.protocol ?? "tcp" };
  });

/** A ports entry in either syntax: a string or number (short) or a mapping (long). */
const portItem = z.unknown().transform((v, ctx): PortEntry => {
  const fail = (message: string, path: PropertyKey[] = []) => {
    ctx.addIssue({ code: "custom", message, path, input: v });
    return z.NEVER;
  };
  if (typeof v === "string") {
    const r = parseShortPort(v);
    return r instanceof Bad ? fail(r.message) : r;
  }
  if (typeof v === "number") {
    const r = portNumber(v);
    return r instanceof Bad ? fail(r.message) : { target: r, targetEnd: r, protocol: "tcp" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return fail(`${SHORT_PORT}, or a mapping with a target`);
  // Parsed on its own so a mistake inside a long entry is reported at its field, not as "no union member matched".
  const r = LongPort.safeParse(v);
  if (r.success) return r.data;
  for (const issue of r.error.issues) fail(issue.message, issue.path);
  return z.NEVER;
});

export const ports = z.preprocess((v) => v ?? [], z.array(portItem, { error: "expected a list of ports" }));

// ---- healthcheck ------------------------------------------------------------------------------

const HEALTH_TEST = 'expected a command string, or a list starting with "CMD", "CMD-SHELL" or "NONE"';

const healthTest = (v: unknown): string[] | Bad => {
  if (typeof v === "string") return ["CMD-SHELL", v];
  if (!Array.isArray(v)) return new Bad(HEALTH_TEST);
  const bad = v.findIndex((w) => typeof w !== "string");
  if (bad >= 0) return new Bad("expected a string", [bad]);
  const test = v as string[];
  if (test.length === 0) return test; // Docker: keep the image's test
  if (test[0] === "NONE" && test.length === 1) return test;
  if (test[0] === "CMD" && test.length >= 2) return test;
  if (test[0] === "CMD-SHELL" && test.length === 2) return test;
  if (test[0] === "NONE" || test[0] === "CMD" || test[0] === "CMD-SHELL")
    return new Bad(test[0] === "NONE" ? '"NONE" takes no arguments' : test[0] === "CMD" ? '"CMD" needs the program to run' : '"CMD-SHELL" takes exactly one command string');
  return new Bad(HEALTH_TEST);
};

export const flag = (v: unknown): boolean | Bad =>
  typeof v === "boolean" ? v : v === "true" ? true : v === "false" ? false : new Bad("expected true or false");

const healthcheckShape = {
  test: leaf(healthTest),
  disable: leaf(flag),
  interval: leaf(duration),
  timeout: leaf(duration),
  start_period: leaf(duration),
  retries: leaf(whole(0)),
};

const Healthcheck = z
  .looseObject(healthcheckShape, { error: "expected a mapping" })
  .transform((h, ctx): HealthcheckSpec => {
    if (h.disable && h.test !== undefined) ctx.addIssue({ code: "custom", path: ["disable"], message: "test and disable: true can't both be set", input: h });
    return {
      test: h.disable ? ["NONE"] : (h.test ?? []),
      intervalMs: h.interval ?? 30_000,
      timeoutMs: h.timeout ?? 30_000,
      retries: h.retries ?? 3,
      startPeriodMs: h.start_period ?? 0,
    };
  });

// ---- deploy -----------------------------------------------------------------------------------

const updatePolicyShape = (failureActions: readonly UpdatePolicy["failureAction"][]) => ({
  parallelism: leaf(whole(0)),
  delay: leaf(duration),
  failure_action: leaf(oneOf(failureActions)),
  monitor: leaf(duration),
  max_failure_ratio: leaf(ratio()),
  order: leaf(oneOf(["stop-first", "start-first"] as const)),
});

const updatePolicy = (failureActions: readonly UpdatePolicy["failureAction"][]) =>
  mapping(updatePolicyShape(failureActions)).transform(
    (u): UpdatePolicy => ({
      parallelism: u.parallelism ?? 1,
      delayMs: u.delay ?? 0,
      order: u.order ?? "stop-first",
      failureAction: u.failure_action ?? "pause",
      monitorMs: u.monitor ?? 5_000,
      maxFailureRatio: u.max_failure_ratio ?? 0,
    }),
  );

const limitsShape = { cpus: leaf(cpus), memory: leaf(memory) };

const placementList = (what: string) => (v: unknown): string[] | Bad =>
  Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : new Bad(`expected a list of ${what}`);

/** `preferences: [{ spread: node.labels.zone }]`: the labels to spread over. */
const spreads = (v: unknown): string[] | Bad => {
  if (!Array.isArray(v)) return new Bad("expected a list such as [{ spread: node.labels.zone }]");
  const out: string[] = [];
  for (const [i, p] of v.entries()) {
    const spread = typeof p === "object" && p !== null ? (p as { spread?: unknown }).spread : undefined;
    if (typeof spread !== "string") return new Bad("expected { spread: LABEL }", [i]);
    out.push(spread);
  }
  return out;
};

const placementShape = {
  constraints: leaf(placementList('constraints such as "node.role==manager"')),
  preferences: leaf(spreads),
  max_replicas_per_node: leaf(whole(1)),
};

const deployShape = {
  replicas: leaf(whole(0)),
  placement: mapping(placementShape),
  update_config: updatePolicy(["continue", "rollback", "pause"]),
  // The spec lists continue and pause only: a failing rollback cannot roll back.
  rollback_config: updatePolicy(["continue", "pause"]),
  resources: mapping({ limits: mapping(limitsShape) }),
};

const Deploy = mapping(deployShape);

// ---- x-hoist ----------------------------------------------------------------------------------

const steps = (v: unknown): number[] | Bad => {
  if (!Array.isArray(v) || v.length === 0) return new Bad("expected a list of percentages ending with 100, such as [10, 50, 100]");
  for (const [i, s] of v.entries()) {
    if (typeof s !== "number" || !Number.isInteger(s) || s < 1 || s > 100) return new Bad("expected a whole percentage from 1 to 100", [i]);
    if (i > 0 && s <= (v[i - 1] as number)) return new Bad(`steps must increase: ${s} follows ${v[i - 1]}`, [i]);
  }
  if (v[v.length - 1] !== 100) return new Bad("the last step must be 100", [v.length - 1]);
  return v as number[];
};

const healthPath = (v: unknown): string | Bad => (typeof v === "string" && v.startsWith("/") && !/\s/.test(v) ? v : new Bad('expected a URL path starting with "/"'));

/** A DNS name as a Host header carries it, lower case. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** `host`, `host/path` or `{ host, path }`: requests for that host whose path starts with `path` (default "/"). */
const route = (v: unknown): Route | Bad => {
  const [host, path] =
    typeof v === "string"
      ? v.includes("/") ? [v.slice(0, v.indexOf("/")), v.slice(v.indexOf("/"))] : [v, "/"]
      : typeof v === "object" && v !== null && !Array.isArray(v)
        ? [(v as Record<string, unknown>).host, (v as Record<string, unknown>).path ?? "/"]
        : [undefined, undefined];
  if (typeof host !== "string" || !HOST_NAME.test(host.toLowerCase())) return new Bad('expected a host name such as "shop.example.com", optionally with a path: "shop.example.com/api"');
  if (typeof path !== "string" || !path.startsWith("/") || /[\s#?]/.test(path)) return new Bad('expected a path starting with "/", without spaces, query or fragment');
  return { host: host.toLowerCase(), path };
};

const routes = (v: unknown): Route[] | Bad => {
  if (!Array.isArray(v) || v.length === 0) return new Bad("expected a list of routes, such as [shop.example.com, shop.example.com/api]");
  if (v.length > 100) return new Bad("expected at most 100 routes");
  const out: Route[] = [];
  for (const [i, item] of v.entries()) {
    const r = route(item);
    if (r instanceof Bad) return new Bad(r.message, [i]);
    out.push(r);
  }
  return out;
};

const XHoist = strictMapping({
  port: leaf(whole(1, 65535, false)),
  routes: leaf(routes),
  strategy: leaf(oneOf(STRATEGIES)),
  steps: leaf(steps),
  interval: leaf(hoistDuration()),
  health: strictMapping({
    path: leaf(healthPath),
    status: leaf(whole(100, 599, false)),
    timeout: leaf(hoistDuration(true)),
    interval: leaf(hoistDuration()),
    retries: leaf(whole(1, undefined, false)),
  }),
  error_threshold: leaf(ratio(false)),
  drain: leaf(hoistDuration()),
}).transform((x): HoistSettings & { port?: number } => ({
  ...(x.port !== undefined ? { port: x.port } : {}),
  strategy: x.strategy ?? "rolling",
  steps: x.steps ?? [10, 50, 100],
  intervalMs: x.interval ?? 30_000,
  health: {
    path: x.health.path ?? "/",
    status: x.health.status ?? 200,
    timeoutMs: x.health.timeout ?? 2_000,
    intervalMs: x.health.interval ?? 1_000,
    retries: x.health.retries ?? 30,
  },
  errorThreshold: x.error_threshold ?? 0.05,
  drainMs: x.drain ?? 5_000,
  ...(x.routes ? { routes: x.routes } : {}),
}));

// ---- service ----------------------------------------------------------------------------------

export const serviceShape = {
  image: leaf(text),
  command: leaf(command),
  environment: leaf(environment),
  ports,
  healthcheck: z.preprocess((v) => v ?? undefined, Healthcheck.optional()),
  deploy: Deploy,
  "x-hoist": XHoist,
};

/** One Compose service, read into a ReleaseSpec (without its name). */
export const ComposeService = z
  .looseObject(serviceShape, { error: "expected a mapping" })
  .transform((s, ctx): Omit<ReleaseSpec, "service"> => {
    const { port: hoistPort, ...hoist } = s["x-hoist"];
    let port = hoistPort;
    if (port === undefined) {
      const first = s.ports[0];
      if (!first) ctx.addIssue({ code: "custom", path: [], message: "no port to route to: set x-hoist.port, or list the container port under ports", input: s });
      else if (first.targetEnd !== first.target)
        ctx.addIssue({ code: "custom", path: ["ports", 0], message: "a port range can't be the routed port: set x-hoist.port", input: s });
      else if (first.protocol !== "tcp")
        ctx.addIssue({ code: "custom", path: ["ports", 0], message: `the routed port must be tcp, not ${first.protocol}: set x-hoist.port`, input: s });
      else port = first.target;
    }
    if (port === undefined) return z.NEVER;
    const limits = s.deploy.resources.limits;
    return {
      ...(s.image !== undefined ? { image: s.image } : {}),
      ...(s.command !== undefined ? { command: s.command } : {}),
      environment: s.environment ?? {},
      port,
      replicas: s.deploy.replicas ?? 1,
      update: s.deploy.update_config,
      rollback: s.deploy.rollback_config,
      resources: {
        ...(limits.cpus ? { cpus: limits.cpus } : {}),
        ...(limits.memory ? { memoryBytes: limits.memory } : {}),
      },
      ...(s.healthcheck !== undefined ? { healthcheck: s.healthcheck } : {}),
      hoist,
    };
  });

// ---- what is read -----------------------------------------------------------------------------

/** The keys read under a mapping: `true` for a value read whole, a subtree for a mapping read key by key. */
export type KeysRead = { readonly [key: string]: true | KeysRead };

const keysOf = (shape: object): KeysRead => Object.fromEntries(Object.keys(shape).map((k) => [k, true as const]));

/** The keys of a service that Hoist reads, from the schema above; every other key is ignored. */
export const SERVICE_KEYS_READ: KeysRead = {
  ...keysOf(serviceShape),
  // The image the pipeline built takes the place of what `build:` describes.
  build: true,
  healthcheck: keysOf(healthcheckShape),
  deploy: {
    ...keysOf(deployShape),
    update_config: keysOf(updatePolicyShape([])),
    rollback_config: keysOf(updatePolicyShape([])),
    resources: { limits: keysOf(limitsShape) },
    placement: keysOf(placementShape),
  },
};
