import { readDotEnv } from "./dotenv.ts";
import { isMapping } from "./merge.ts";
import { relative } from "./project.ts";
import { assemble, failAt, invalid, warning, warningTexts, type Doc, type Warning } from "./assemble.ts";
import { AppServiceFields, type DependsOnEntry } from "./app-schema.ts";
import type { AppParts, AppService, Dependency, Mount, NetworkAttachment, RuntimeSettings, SecretMount } from "../release/app-spec.ts";
import { appRefusals, type HostAllowances, type Refusal } from "./refusals.ts";
import { ignoredKeys } from "./ignored.ts";
import { APP_SERVICE_KEYS_READ } from "./app-keys.ts";
import { ComposeService } from "./service-schema.ts";
import type { ReleaseSpec } from "../release/spec.ts";
import { at, describeIssues, lineAt, type Path } from "../yaml/locate.ts";

/** More services than this is not one application Hoist releases in one go. */
export const MAX_APP_SERVICES = 64;

/**
 * The release of `service` of a Compose file (without one, the service that takes traffic) and of
 * what it depends on: the application reader limited to that service.
 */
export function readReleaseSpec(text: string, service: string | undefined, file = "docker-compose.yml", variables: Readonly<Record<string, string>> = {}): Promise<AppResult> {
  return readApp(text, { file, variables, routed: service, only: service === undefined ? undefined : [service] });
}

/** Stands for the run's image in a service with `build:` when the reader is not told what the run built. */
export const BUILT_IMAGE = "";

/**
 * What the run built: one image that every service with `build:` runs (a build stage of one
 * Dockerfile), and with a compose build stage, one per service.
 */
export interface BuiltImages {
  image: string;
  services?: Readonly<Record<string, string>>;
}

export interface AppOptions {
  /** The name used in messages. */
  file?: string;
  /** Values for `${VAR}`: the environment's variables over the repository's `.env`. */
  variables?: Readonly<Record<string, string>>;
  /** The service that takes the environment's traffic (the stage's `service:`); else the one that can. */
  routed?: string | undefined;
  /** Release only these services (the stage's `services:`), and what they depend on. */
  only?: readonly string[] | undefined;
  /** Compose profiles to release besides the services that have none. */
  profiles?: readonly string[] | undefined;
  allow?: HostAllowances;
  /**
   * The environment's own variables, by name: a compose secret's `environment:` names one; a secret
   * one is never interpolated. (Their values are read when the release starts a container.)
   */
  serverVariables?: Readonly<Record<string, { version: string; secret: boolean }>>;
  /** Later files of the stage's `compose:` list, merged over this one in order (`docker compose -f a -f b`). */
  overrides?: readonly { file: string; text: string }[] | undefined;
  /** Reads a repository file at the run's sha (`env_file:`, `include`, `extends.file`), by its path from the repository's root. */
  readFile?: (path: string) => Promise<string | undefined>;
  built?: BuiltImages;
}

/** `image`: what the routed service runs (the release's image). */
export type AppResult = { ok: true; spec: ReleaseSpec; image: string; warnings: string[] } | { ok: false; error: string; reason: Refusal };

/**
 * Reads a whole compose application: every service the stage releases, in start order, the one
 * that takes the environment's traffic as a release description with the rest around it. Never
 * rejects: a broken or unreleasable file gives an error naming its line and what to change;
 * keys Hoist does not act on come back as warnings with their lines.
 */
export async function readApp(text: string, options: AppOptions = {}): Promise<AppResult> {
  const file = options.file ?? "docker-compose.yml";
  const variables = options.variables ?? {};
  const server = options.serverVariables ?? {};
  const secrets = new Set(Object.entries(server).filter(([, v]) => v.secret).map(([name]) => name));
  const assembled = await assemble(text, { file, variables, secrets, overrides: options.overrides, readFile: options.readFile });
  if (!assembled.ok) return assembled;
  const { doc, unset } = assembled;
  const { root, lines } = doc;
  const fail = (path: Path, message: string, reason: Refusal = "invalid"): AppResult => ({ ok: false, reason, error: at(file, lineAt(lines, path), message) });

  const services = root.services ?? {};
  if (!isMapping(services)) return fail(["services"], "services: expected a mapping of service names to services");
  const names = Object.keys(services);
  // Compose's own rule for names: they become container names, DNS aliases and labels.
  const badName = names.find((n) => !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(n) || n.length > 63);
  if (badName !== undefined) return fail(["services", badName], `services: "${badName.slice(0, 80)}" is not a service name: letters, digits, ".", "_" and "-", at most 63, starting with a letter or digit`);
  for (const name of [...(options.only ?? []), ...(options.routed ? [options.routed] : [])])
    if (!Object.hasOwn(services, name)) return invalid(at(file, undefined, `no service "${name}" (${names.length ? `services: ${names.join(", ")}` : "the file declares no services"})`));
  if (names.length === 0) return invalid(at(file, undefined, "the file declares no services"));
  const declaredVolumes = declared(root.volumes);
  const declaredNetworks = declared(root.networks);
  for (const [key, set] of [["volumes", declaredVolumes], ["networks", declaredNetworks]] as const) {
    const bad = [...(set ?? [])].find((n) => !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(n) || n.length > 40);
    if (bad !== undefined) return fail([key, bad], `${key}: "${bad.slice(0, 80)}" is not a ${key.slice(0, -1)} name: letters, digits, ".", "_" and "-", at most 40, starting with a letter or digit`);
  }
  if (declaredVolumes === undefined) return fail(["volumes"], "volumes: expected a mapping of volume names");
  if (declaredNetworks === undefined) return fail(["networks"], "networks: expected a mapping of network names");

  // Which services: those with no profile or a selected one (as `docker compose up` does), or the
  // stage's list; then whatever they depend on.
  const profiles = new Set(options.profiles ?? []);
  const inProfile = (name: string) => {
    const p = (services[name] as Record<string, unknown> | null)?.profiles;
    return !Array.isArray(p) || p.length === 0 || p.some((x) => profiles.has(String(x)));
  };
  const wanted = options.only ? [...options.only, ...(options.routed ? [options.routed] : [])] : names.filter(inProfile);
  if (wanted.length === 0) return invalid(at(file, undefined, "every service has a profile and none is selected: name the profiles to release in the deploy stage's profiles"));

  const fields = new Map<string, AppServiceFields>();
  const queue = [...new Set(wanted)];
  while (queue.length) {
    const name = queue.shift()!;
    if (fields.has(name)) continue;
    if (fields.size >= MAX_APP_SERVICES) return invalid(at(file, undefined, `the app has more than ${MAX_APP_SERVICES} services: release it in parts with the deploy stages' services lists`));
    const parsed = AppServiceFields.safeParse(services[name]);
    if (!parsed.success) return invalid(describeIssues(file, lines, parsed.error.issues, ["services", name]));
    fields.set(name, parsed.data);
    for (const dep of parsed.data.depends_on ?? []) {
      if (Object.hasOwn(services, dep.service)) {
        if (!fields.has(dep.service)) queue.push(dep.service);
      } else if (dep.required) return fail(["services", name, "depends_on"], `services.${name}.depends_on: no service "${dep.service}" in the file`);
    }
  }

  const refused = appRefusals(doc, fields, options.allow ?? {});
  if (refused) return { ok: false, ...refused };

  const order = startOrder(doc, fields);
  if (typeof order === "string") return invalid(order);

  const picked = options.routed !== undefined ? { name: options.routed } : pickRouted(fields);
  if ("several" in picked)
    return { ok: false, reason: "no-route", error: at(file, undefined, `several services could take the environment's traffic (${picked.several.join(", ")}): name one with the deploy stage's service`) };
  // None can take traffic (workers, consumers, jobs): the app is released without touching the router.
  const routedName = picked.name;

  // A build stage of one Dockerfile makes one image: services whose build sections agree all run it.
  const built = options.built;
  const perService = built?.services;
  if (!perService) {
    const builds = new Map<string, string[]>();
    for (const [name, f] of fields) if (f.build !== undefined) builds.set(f.build, [...(builds.get(f.build) ?? []), name]);
    if (builds.size > 1)
      return fail(["services"], `services ${[...builds.values()].map((n) => n.join(", ")).join(" and ")} build different images: build each from this file with the build stage's compose: ${file}`, "several-builds");
  }
  const builtFor = (name: string): string | AppResult => {
    if (!perService) return built?.image ?? BUILT_IMAGE;
    if (Object.hasOwn(perService, name)) return perService[name]!;
    return fail(["services", name, "build"], `services.${name}: the run built no image for it (it built ${Object.keys(perService).join(", ")}): build it in the build stage (its compose: and services:)`, "no-image");
  };

  const envFiles = await readEnvFiles(doc, fields, options.readFile);
  if (typeof envFiles === "string") return invalid(envFiles);

  // A service others wait on to finish (a migration) is a one-off: not restarted once it exits.
  const oneOffs = new Set([...fields.values()].flatMap((f) => (f.depends_on ?? []).filter((d) => d.condition === "service_completed_successfully").map((d) => d.service)));
  const secretMounts = secretsOf(doc, fields, server);
  if (!(secretMounts instanceof Map)) return secretMounts;
  const configMounts = await configsOf(doc, fields, server, options.readFile);
  if (!(configMounts instanceof Map)) return configMounts;
  for (const [name, mounts] of configMounts) secretMounts.set(name, [...(secretMounts.get(name) ?? []), ...mounts]);
  const warnings = [...unset];
  const companions: AppService[] = [];
  let routed: ReleaseSpec | undefined;
  let routedImage = built?.image ?? BUILT_IMAGE;
  let routedDependsOn: Dependency[] = [];
  const usedVolumes = new Set<string>();
  const usedNetworks = new Set<string>();
  for (const name of order) {
    const f = fields.get(name)!;
    const environment = { ...envFiles.get(name), ...(f.environment ?? {}) };
    const runtime = runtimeOf(f, externalVolumes(root.volumes), oneOffs.has(name));
    const networks: NetworkAttachment[] = (f.networks ?? [{ network: "default", aliases: [] }]).map((n) => ({ network: n.network, aliases: n.aliases }));
    for (const n of networks) usedNetworks.add(n.network);
    for (const m of runtime.mounts) if (m.type === "volume" && m.hostName === undefined) usedVolumes.add(m.source);
    const dependsOn = (f.depends_on ?? []).filter((d) => fields.has(d.service)).map(({ service, condition }) => ({ service, condition }));
    const image = f.build !== undefined ? builtFor(name) : (f.image ?? BUILT_IMAGE);
    if (typeof image !== "string") return image;
    if (name === routedName) {
      // The routed service runs the run's image, unless a compose build made each service's.
      routedImage = f.build === undefined && !perService ? (built?.image ?? BUILT_IMAGE) : image;
      if (routedImage === BUILT_IMAGE && perService) return fail(["services", name], `services.${name}: no image and no build: say what the service runs`, "no-image");
      const spec = readRouted(doc, name, f);
      if (!spec.ok) return spec;
      const secrets = secretMounts.get(name) ?? [];
      routed = { ...spec.spec, environment, networks, runtime, ...(secrets.length ? { secrets } : {}) };
      routedDependsOn = dependsOn;
      continue;
    }
    // The routed service runs the run's image whatever it names; the others need one.
    if (f.image === undefined && f.build === undefined) return fail(["services", name], `services.${name}: no image and no build: say what the service runs`, "no-image");
    const stateful = runtime.mounts.some((m) => m.type === "volume");
    if (stateful && (f.deploy.replicas ?? 1) > 1)
      return fail(["services", name, "deploy", "replicas"], `services.${name}: a service with a named volume runs one instance (its volume can't be shared between replicas safely): set deploy.replicas to 1`, "shared-volume");
    const only = routedName === undefined ? "no service" : `only ${routedName}`;
    if (f.ports.length) warnings.push(warning(doc, ["services", name, "ports"], `services.${name}.ports are not published: Hoist routes ${only}; other services reach ${name} by its name on the app's network`));
    if (isMapping((services[name] as Record<string, unknown>)["x-hoist"]))
      warnings.push(warning(doc, ["services", name, "x-hoist"], `services.${name}.x-hoist is read only for the routed service (${routedName ?? "none"}) and is ignored`));
    const limits = f.deploy.resources.limits;
    companions.push({
      name,
      kind: stateful ? "stateful" : "worker",
      image,
      ...(f.command !== undefined ? { command: f.command } : {}),
      environment,
      ...(f.healthcheck !== undefined ? { healthcheck: f.healthcheck } : {}),
      replicas: stateful ? 1 : (f.deploy.replicas ?? 1),
      update: f.deploy.update_config,
      resources: { ...(limits.cpus ? { cpus: limits.cpus } : {}), ...(limits.memory ? { memoryBytes: limits.memory } : {}) },
      dependsOn,
      networks,
      runtime,
      secrets: secretMounts.get(name) ?? [],
    });
  }
  warnings.push(...ignoredKeys(root, [...fields.keys()], lines, file, APP_SERVICE_KEYS_READ));
  const app: AppParts = { dependsOn: routedDependsOn, services: companions, networks: [...usedNetworks].sort(), volumes: [...usedVolumes].sort() };
  if (!routed) warnings.push({ line: 0, text: at(file, undefined, "no service takes the environment's traffic (none has ports, expose or x-hoist.port): every service is released as a worker, and the router is left alone") });
  return {
    ok: true,
    spec: { ...(routed ?? unroutedSpec()), app },
    image: routedImage,
    warnings: warningTexts(warnings),
  };
}

/** Each service's compose secrets, from the top-level definitions: only `environment:` ones, set on the environment. */
function secretsOf(doc: Doc, fields: Map<string, AppServiceFields>, server: NonNullable<AppOptions["serverVariables"]>): Map<string, SecretMount[]> | AppResult {
  const defined = isMapping(doc.root.secrets) ? doc.root.secrets : {};
  const out = new Map<string, SecretMount[]>();
  for (const [name, f] of fields) {
    const mounts: SecretMount[] = [];
    for (const [i, ref] of (f.secrets ?? []).entries()) {
      const where = ["services", name, "secrets", i];
      const fail = (reason: Refusal, path: Path, message: string): AppResult => ({ ok: false, reason, error: at(doc.file, lineAt(doc.lines, path), message) });
      const def = defined[ref.source];
      if (!isMapping(def)) return fail("invalid", where, `services.${name}.secrets: the secret "${ref.source}" is not declared under the top-level secrets: add it there, with environment: VARIABLE`);
      const here = ["secrets", ref.source];
      if (def.file !== undefined)
        return fail("repository-path", [...here, "file"], `secrets.${ref.source}.file: a secret kept in the repository is no secret: set it on the environment (\`hoist env vars set ENV VARIABLE --secret --value-stdin\`) and declare it with environment: VARIABLE`);
      if (typeof def.environment !== "string") return fail("not-yet", here, `secrets.${ref.source}: Hoist reads a secret from one of the environment's variables: declare it with environment: VARIABLE`);
      const variable = server[def.environment];
      if (!variable)
        return fail("missing-secret", [...here, "environment"], `secrets.${ref.source}: the environment has no variable ${def.environment}: set it with \`hoist env vars set ENV ${def.environment} --secret --value-stdin\``);
      const target = ref.target === undefined ? `/run/secrets/${ref.source}` : ref.target.startsWith("/") ? ref.target : `/run/secrets/${ref.target}`;
      mounts.push({ name: ref.source, variable: def.environment, version: variable.version, target, mode: ref.mode ?? 0o444, uid: ref.uid ?? 0, gid: ref.gid ?? 0 });
    }
    out.set(name, mounts);
  }
  return out;
}

/** A config's text kept in the release's description: larger ones belong in the image. */
export const MAX_CONFIG_BYTES = 16 * 1024;
/** All configs' text an app keeps in its description. */
export const MAX_CONFIGS_BYTES = 64 * 1024;

/**
 * Each service's compose configs, as files: a config's `content:` or repository `file:` (read
 * at the run's sha) as it is, or one of the environment's variables (`environment:`), read
 * when the release starts the service. At `/NAME` unless the service names a target.
 */
async function configsOf(doc: Doc, fields: Map<string, AppServiceFields>, server: NonNullable<AppOptions["serverVariables"]>, readFile: AppOptions["readFile"]): Promise<Map<string, SecretMount[]> | AppResult> {
  const defined = isMapping(doc.root.configs) ? doc.root.configs : {};
  const out = new Map<string, SecretMount[]>();
  const texts = new Map<string, string>();
  let total = 0;
  for (const [name, f] of fields) {
    const mounts: SecretMount[] = [];
    for (const [i, ref] of (f.configs ?? []).entries()) {
      const fail = (reason: Refusal, path: Path, message: string) => failAt(doc, path, message, reason);
      const def = defined[ref.source];
      if (!isMapping(def)) return fail("invalid", ["services", name, "configs", i], `services.${name}.configs: the config "${ref.source}" is not declared under the top-level configs: add it there, with file:, content: or environment:`);
      const here = ["configs", ref.source];
      const target = ref.target === undefined ? `/${ref.source}` : ref.target.startsWith("/") ? ref.target : `/${ref.target}`;
      const base = { name: ref.source, kind: "config" as const, target, mode: ref.mode ?? 0o444, uid: ref.uid ?? 0, gid: ref.gid ?? 0 };
      if (typeof def.environment === "string") {
        const variable = server[def.environment];
        if (!variable) return fail("missing-secret", [...here, "environment"], `configs.${ref.source}: the environment has no variable ${def.environment}: set it with \`hoist env vars set ENV ${def.environment}=VALUE\``);
        mounts.push({ ...base, variable: def.environment, version: variable.version });
        continue;
      }
      let text = texts.get(ref.source);
      if (text === undefined) {
        if (typeof def.content === "string") text = def.content;
        else if (typeof def.file === "string") {
          const path = relative(doc.file, def.file);
          const found = path === undefined ? undefined : await readFile?.(path);
          if (found === undefined) return fail("repository-path", [...here, "file"], `configs.${ref.source}.file: ${def.file} is not a file of the repository at this commit`);
          text = found;
        } else return fail("not-yet", here, `configs.${ref.source}: Hoist reads a config from file: (in the repository), content: or environment: (one of the environment's variables)`);
        const bytes = new TextEncoder().encode(text).length;
        total += bytes;
        if (bytes > MAX_CONFIG_BYTES || total > MAX_CONFIGS_BYTES)
          return fail("invalid", here, `configs.${ref.source}: ${bytes} bytes; a config holds at most ${MAX_CONFIG_BYTES}, and an app's at most ${MAX_CONFIGS_BYTES} in all: put larger files in the image`);
        texts.set(ref.source, text);
      }
      mounts.push({ ...base, content: text });
    }
    out.set(name, mounts);
  }
  return out;
}

function readRouted(doc: Doc, name: string, f: AppServiceFields): { ok: true; spec: ReleaseSpec } | Extract<AppResult, { ok: false }> {
  const raw = (doc.root.services as Record<string, unknown>)[name] as Record<string, unknown>;
  const hoist = isMapping(raw["x-hoist"]) ? raw["x-hoist"] : {};
  // A service that only declares `expose` is routed to the first port it exposes.
  const exposed = f.ports.length === 0 && hoist.port === undefined ? f.expose?.[0] : undefined;
  const parsed = ComposeService.safeParse(exposed === undefined ? raw : { ...raw, "x-hoist": { ...hoist, port: exposed } });
  if (!parsed.success) {
    const error = describeIssues(doc.file, doc.lines, parsed.error.issues, ["services", name]);
    const portless = /no port to route to|can't be the routed port|the routed port must be tcp/.test(error);
    return { ok: false, reason: portless ? "no-route" : "invalid", error: error.includes("no port to route to") ? `${error}, or under expose` : error };
  }
  return { ok: true, spec: { service: name, ...parsed.data } };
}

/** Each service after what it depends on, else in file order; a cycle is an error naming it. */
function startOrder(doc: Doc, fields: Map<string, AppServiceFields>): string[] | string {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, trail: string[]): string | undefined => {
    if (state.get(name) === "done") return undefined;
    if (state.get(name) === "visiting") {
      const cycle = [...trail.slice(trail.indexOf(name)), name];
      return at(doc.file, lineAt(doc.lines, ["services", name, "depends_on"]), `services.${name}.depends_on: a cycle (${cycle.join(" → ")}): no service can start first`);
    }
    state.set(name, "visiting");
    for (const dep of fields.get(name)?.depends_on ?? []) {
      if (!fields.has(dep.service)) continue;
      const err = visit(dep.service, [...trail, name]);
      if (err) return err;
    }
    state.set(name, "done");
    order.push(name);
    return undefined;
  };
  for (const name of fields.keys()) {
    const err = visit(name, []);
    if (err) return err;
  }
  return order;
}

const isRoutable = (f: AppServiceFields) => f.ports.length > 0 || (f.expose?.length ?? 0) > 0 || f["x-hoist"].port !== undefined;
const hasNamedVolume = (f: AppServiceFields) => (f.volumes ?? []).some((m) => m.type === "volume");

/**
 * The service that takes the environment's traffic when the stage names none: the one that can
 * (a port, no named volume); among several, the one with x-hoist settings, then the one the
 * repository builds (its own code, beside pulled images such as a database's). None: an app of
 * workers.
 */
function pickRouted(fields: Map<string, AppServiceFields>): { name: string | undefined } | { several: string[] } {
  let candidates = [...fields].filter(([, f]) => isRoutable(f) && !hasNamedVolume(f));
  for (const prefer of [hoistWritten, (f: AppServiceFields) => f.build !== undefined]) {
    if (candidates.length <= 1) break;
    const preferred = candidates.filter(([, f]) => prefer(f));
    if (preferred.length) candidates = preferred;
  }
  return candidates.length > 1 ? { several: candidates.map(([n]) => n) } : { name: candidates[0]?.[0] };
}

/** x-hoist is read with defaults filled in: whether the file wrote one shows in its port, routes or a strategy. */
const hoistWritten = (f: AppServiceFields) => f["x-hoist"].port !== undefined || f["x-hoist"].routes !== undefined || f["x-hoist"].strategy !== "rolling";

/** The release description of an app with no routed service: the schema's own defaults, no port and no replicas, nothing for a strategy to do. */
function unroutedSpec(): ReleaseSpec {
  return { ...ComposeService.parse({ "x-hoist": { port: 1 } }), service: "", unrouted: true, port: 0, replicas: 0 };
}

async function readEnvFiles(doc: Doc, fields: Map<string, AppServiceFields>, readFile: AppOptions["readFile"]): Promise<Map<string, Record<string, string>> | string> {
  const out = new Map<string, Record<string, string>>();
  for (const [name, f] of fields) {
    const values: Record<string, string> = {};
    for (const [i, entry] of (f.env_file ?? []).entries()) {
      const where = at(doc.file, lineAt(doc.lines, ["services", name, "env_file", i]), `services.${name}.env_file`);
      const path = relative(doc.file, entry.path);
      if (path === undefined) return `${where}: ${entry.path} is outside the repository`;
      const text = readFile ? await readFile(path) : undefined;
      if (text === undefined) {
        if (entry.required) return `${where}: ${path} is not in the repository at this commit (mark it required: false if it may be missing)`;
        continue;
      }
      const read = readDotEnv(text, path);
      if (!read.ok) return `${where}: ${read.error}`;
      Object.assign(values, read.variables);
    }
    out.set(name, values);
  }
  return out;
}

/** Volumes declared `external` (where the environment allows it), by their names on the host. */
function externalVolumes(v: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, spec] of Object.entries(isMapping(v) ? v : {}))
    if (isMapping(spec) && (spec.external === true || spec.external === "true")) out.set(key, typeof spec.name === "string" ? spec.name : key);
  return out;
}

function runtimeOf(f: AppServiceFields, external: Map<string, string>, oneOff: boolean): RuntimeSettings {
  const mounts: Mount[] = [...(f.volumes ?? []), ...(f.tmpfs ?? [])].map((m) =>
    m.type === "volume" && external.has(m.source) ? { ...m, hostName: external.get(m.source)! } : m,
  );
  return {
    mounts,
    labels: f.labels ?? {},
    ...(f.entrypoint !== undefined ? { entrypoint: f.entrypoint } : {}),
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.working_dir !== undefined ? { workingDir: f.working_dir } : {}),
    ...(f.stop_signal !== undefined ? { stopSignal: f.stop_signal } : {}),
    ...(f.stop_grace_period !== undefined ? { stopGraceMs: f.stop_grace_period } : {}),
    ...(f.read_only !== undefined ? { readOnly: f.read_only } : {}),
    extraHosts: f.extra_hosts ?? [],
    // Compose's default is "no"; a delivery service keeps what it releases running, but for a one-off.
    restart: f.restart ?? { name: oneOff ? "no" : "unless-stopped" },
    ...(f.privileged ? { privileged: true } : {}),
    capAdd: f.cap_add ?? [],
    capDrop: f.cap_drop ?? [],
    ...(placementOf(f) ?? {}),
  };
}

function placementOf(f: AppServiceFields): { placement: NonNullable<RuntimeSettings["placement"]> } | undefined {
  const p = f.deploy.placement;
  if (!p.constraints?.length && !p.preferences?.length && p.max_replicas_per_node === undefined) return undefined;
  return {
    placement: {
      constraints: p.constraints ?? [],
      spreads: p.preferences ?? [],
      ...(p.max_replicas_per_node !== undefined ? { maxReplicasPerNode: p.max_replicas_per_node } : {}),
    },
  };
}

/** The names a top-level `volumes:`/`networks:` declares; undefined when it is not a mapping. */
function declared(v: unknown): Set<string> | undefined {
  if (v === undefined || v === null) return new Set();
  return isMapping(v) ? new Set(Object.keys(v)) : undefined;
}


export type { DependsOnEntry };


