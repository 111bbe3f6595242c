import { assemble, failAt, invalid, warning, warningTexts, type Doc, type Failure, type Warning } from "./assemble.ts";
import { isMapping } from "./merge.ts";
import { relative } from "./project.ts";
import { parseImageRef, repositoryOf } from "../pipeline/image-ref.ts";
import type { Path } from "../yaml/locate.ts";

/** More images than this is not one build stage (each is a `docker build` in one job). */
export const MAX_BUILDS = 16;

/** One image a compose build stage makes, from a service's `build:` section as `docker compose build` reads it. */
export interface ServiceBuild {
  /** The services that run it: equal build sections (and image names) build once. */
  services: string[];
  /** The repository to tag, without tag: the service's `image:`, else `<prefix>-<service>`. */
  image: string;
  /** The context and Dockerfile, from the repository's root. */
  context: string;
  dockerfile: string;
  /** `dockerfile_inline`: the Dockerfile's text, given to the build on its input. */
  dockerfileInline?: string;
  args: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  noCache: boolean;
  pull: boolean;
}

export interface BuildsOptions {
  file: string;
  /** Names an image when the service's `image:` does not: `<prefix>-<service>`. */
  prefix: string;
  /** Values for `${VAR}`: the repository's `.env` (a build belongs to no environment). */
  variables: Readonly<Record<string, string>>;
  overrides?: readonly { file: string; text: string }[] | undefined;
  readFile?: (path: string) => Promise<string | undefined>;
  /** Build only these services' images; default: every service with `build:` and no profile. */
  services?: readonly string[] | undefined;
}

/** Build keys that change nothing about what the image holds on a single-platform engine: read past, with a warning. */
const NOT_ACTED_ON: Readonly<Record<string, string>> = {
  cache_from: "Hoist builds with the builder engine's own cache",
  cache_to: "Hoist builds with the builder engine's own cache",
  tags: "Hoist tags each image with the commit sha (and pushes that tag)",
  platforms: "Hoist builds for the builder engine's platform",
  isolation: "Hoist builds on Linux engines",
};

/** Build keys whose absence would change what is built, or that reach past the repository: refused. */
const REFUSED: Readonly<Record<string, string>> = {
  ssh: "a build gets the repository's files alone: no SSH agent reaches it",
  secrets: "a build gets the repository's files alone: no secret reaches it",
  additional_contexts: "a build gets one context, inside the repository",
  entitlements: "a build runs with no extra privileges",
  privileged: "a build runs with no extra privileges",
  extra_hosts: "not supported yet",
  shm_size: "not supported yet",
  ulimits: "not supported yet",
};

/**
 * The images a compose file's services build, as `docker compose build` would make them, read
 * from the repository at the run's sha. Contexts stay inside the repository (no URLs, no `..`
 * out of it); a build key Hoist cannot honour fails with its line.
 */
export async function readBuilds(text: string, options: BuildsOptions): Promise<{ ok: true; builds: ServiceBuild[]; warnings: string[] } | Failure> {
  const assembled = await assemble(text, options);
  if (!assembled.ok) return assembled;
  const { doc } = assembled;
  const warnings: Warning[] = [...assembled.unset];
  const services = doc.root.services;
  if (!isMapping(services)) return failAt(doc, ["services"], "services: expected a mapping of service names to services");
  // As `docker compose build` does: a service of a profile only when named.
  const names = options.services ?? Object.keys(services).filter((name) => !hasProfiles(services[name]));
  const builds: ServiceBuild[] = [];
  // Equal sections with no image: of their own (or the same one) are one build.
  const keys: string[] = [];
  for (const name of names) {
    const service = services[name];
    if (service === undefined) return invalid(`${doc.file}: no service "${name}" (services: ${Object.keys(services).join(", ")})`);
    if (!isMapping(service) || service.build === undefined || service.build === null) {
      if (options.services) return failAt(doc, ["services", name], `services.${name}: no build: section, so nothing to build`);
      continue;
    }
    const read = readBuild(doc, name, service, options, warnings);
    if ("ok" in read) return read;
    const key = JSON.stringify({ ...read, services: [], image: service.image ?? null });
    const same = keys.indexOf(key);
    if (same >= 0) builds[same]!.services.push(name);
    else {
      builds.push(read);
      keys.push(key);
    }
  }
  if (builds.length === 0) return invalid(`${doc.file}: no service has a build: section: build the repository's Dockerfile with build: { context, dockerfile } instead`);
  if (builds.length > MAX_BUILDS) return invalid(`${doc.file}: ${builds.length} images to build, at most ${MAX_BUILDS} in one stage: split them between build stages with services:`);
  const images = new Map<string, string>();
  for (const b of builds) {
    const other = images.get(b.image);
    if (other !== undefined) return failAt(doc, ["services", b.services[0]!, "image"], `services ${other} and ${b.services[0]} build different images under one name, ${b.image}: give them different image: names`);
    images.set(b.image, b.services[0]!);
  }
  return { ok: true, builds, warnings: warningTexts(warnings) };
}

function readBuild(doc: Doc, name: string, service: Record<string, unknown>, options: BuildsOptions, warnings: Warning[]): ServiceBuild | Failure {
  const at: Path = ["services", name, "build"];
  const raw = service.build;
  const section: Record<string, unknown> = typeof raw === "string" ? { context: raw } : isMapping(raw) ? raw : {};
  if (typeof raw !== "string" && !isMapping(raw)) return failAt(doc, at, `services.${name}.build: expected a context path, or a mapping with context, dockerfile, args and target`);
  for (const key of Object.keys(section)) {
    if (["context", "dockerfile", "dockerfile_inline", "args", "target", "labels", "no_cache", "pull", "network"].includes(key) || key.startsWith("x-")) continue;
    const note = NOT_ACTED_ON[key];
    if (note !== undefined) warnings.push(warning(doc, [...at, key], `services.${name}.build.${key} is not acted on: ${note}`));
    else return failAt(doc, [...at, key], `services.${name}.build.${key} is refused: ${REFUSED[key] ?? "not a build key Hoist knows"}`, "not-yet");
  }
  const { context = ".", dockerfile = "Dockerfile", target, network } = section;
  if (typeof context !== "string" || /^[a-z][a-z0-9+.-]*:\/\/|^git@/i.test(context))
    return failAt(doc, [...at, "context"], `services.${name}.build.context: a build uses the pushed commit's files: give a path inside the repository`, "repository-path");
  const from = relative(doc.file, context);
  if (from === undefined) return failAt(doc, [...at, "context"], `services.${name}.build.context: ${context} is outside the repository`, "repository-path");
  const inline = section.dockerfile_inline;
  if (inline !== undefined && (typeof inline !== "string" || section.dockerfile !== undefined))
    return failAt(doc, [...at, "dockerfile_inline"], `services.${name}.build.dockerfile_inline: expected the Dockerfile's text, and no dockerfile: beside it`);
  if (typeof dockerfile !== "string" || dockerfile === "") return failAt(doc, [...at, "dockerfile"], `services.${name}.build.dockerfile: expected a path in the context (is a variable unset?)`);
  const file = relative(`${from || "."}/_`, dockerfile);
  if (file === undefined || file === "") return failAt(doc, [...at, "dockerfile"], `services.${name}.build.dockerfile: ${dockerfile} is outside the repository`, "repository-path");
  if (target !== undefined && (typeof target !== "string" || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(target)))
    return failAt(doc, [...at, "target"], `services.${name}.build.target: expected a stage name of the Dockerfile`);
  if (network !== undefined && network !== "default" && network !== "none")
    return failAt(doc, [...at, "network"], `services.${name}.build.network: only default or none: a build must not reach the builder's own network (host) or another app's`, "not-yet");
  const args = pairs(section.args, options.variables);
  if (typeof args === "string") return failAt(doc, [...at, "args"], `services.${name}.build.args: ${args}`);
  const labels = pairs(section.labels, {});
  if (typeof labels === "string") return failAt(doc, [...at, "labels"], `services.${name}.build.labels: ${labels}`);
  const flags: Record<string, boolean> = {};
  for (const key of ["no_cache", "pull"] as const) {
    const v = section[key];
    if (v !== undefined && typeof v !== "boolean") return failAt(doc, [...at, key], `services.${name}.build.${key}: expected true or false`);
    flags[key] = v === true;
  }
  const image = imageName(service.image, options.prefix, name);
  if (image === undefined) return failAt(doc, ["services", name, "image"], `services.${name}.image: "${String(service.image).slice(0, 80)}" is not an image name (lower-case letters, digits, ".", "_", "-" and "/"; is a variable unset?)`);
  return { services: [name], image, context: from || ".", dockerfile: file, ...(typeof inline === "string" ? { dockerfileInline: inline } : {}), args, ...(target !== undefined ? { target } : {}), labels, noCache: flags.no_cache!, pull: flags.pull! };
}

/**
 * `args` or `labels` as Compose writes them: a mapping, or a list of `KEY=VALUE`. An arg with no
 * value takes the variable of its name, and is left out when there is none (as Compose does).
 */
function pairs(v: unknown, variables: Readonly<Record<string, string>>): Record<string, string> | string {
  const out: Record<string, string> = {};
  const put = (key: string, value: unknown): string | undefined => {
    if (!/^[A-Za-z_.][A-Za-z0-9_.-]{0,127}$/.test(key)) return `"${key.slice(0, 80)}" is not a name`;
    if (value === null || value === undefined) {
      if (Object.hasOwn(variables, key)) out[key] = variables[key]!;
    } else if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") out[key] = String(value);
    else return `${key}: expected a string, a number or a boolean`;
    return undefined;
  };
  if (v === undefined || v === null) return out;
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item !== "string") return "expected KEY=VALUE strings";
      const eq = item.indexOf("=");
      const bad = eq < 0 ? put(item, null) : put(item.slice(0, eq), item.slice(eq + 1));
      if (bad) return bad;
    }
  } else if (isMapping(v)) {
    for (const [key, value] of Object.entries(v)) {
      const bad = put(key, value);
      if (bad) return bad;
    }
  } else return "expected a mapping or a list of KEY=VALUE";
  return out;
}

function hasProfiles(service: unknown): boolean {
  return isMapping(service) && Array.isArray(service.profiles) && service.profiles.length > 0;
}

/** The repository a service's image is tagged in: its `image:` without tag, else `<prefix>-<service>`. */
function imageName(image: unknown, prefix: string, service: string): string | undefined {
  if (image === undefined || image === null) return `${prefix}-${service.toLowerCase().replace(/[^a-z0-9._-]+/g, "-")}`;
  if (typeof image !== "string") return undefined;
  const name = repositoryOf(parseImageRef(image));
  return /^[a-z0-9]+(?:[._/:-][a-z0-9]+)*$/.test(name) && name.length <= 255 ? name : undefined;
}
