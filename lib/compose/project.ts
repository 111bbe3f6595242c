import { interpolate } from "./interpolate.ts";
import { isMapping, mergeFiles, mergeService, settle } from "./merge.ts";
import { readYamlFile } from "../yaml/isolate.ts";
import { COMPOSE_FILE_LIMITS } from "../yaml/limits.ts";
import { at, lineAt } from "../yaml/locate.ts";
import type { LineTree } from "../yaml/read.mjs";

/**
 * A compose project as Compose assembles it before reading a service: the main file merged with
 * its overrides (`docker compose -f a.yml -f b.yml`), the files it `include`s added, and each
 * service's `extends` resolved (in the same file or another). Other files are read from the
 * repository at the run's sha, relative to the file that names them, interpolated with the same
 * variables, and bounded: at most MAX_FILES files, extends chains at most MAX_DEPTH long.
 */

type Mapping = Record<string, unknown>;

export const MAX_FILES = 16;
const MAX_DEPTH = 10;

export interface ProjectSources {
  file: string;
  lines: LineTree;
  variables: Readonly<Record<string, string>>;
  /** Reads a repository file at the run's sha by its path from the repository's root. */
  readFile?: ((path: string) => Promise<string | undefined>) | undefined;
  /** Later files of the stage's `compose:` list, merged over the main one, in order. */
  overrides?: readonly { file: string; text: string }[] | undefined;
}

/** Variables that are unset in another file are reported like the main file's. */
export interface Unset {
  name: string;
  file: string;
}

export type Project = { ok: true; root: Mapping; unset: Unset[] } | { ok: false; error: string };

export async function loadProject(main: Mapping, src: ProjectSources): Promise<Project> {
  const unset: Unset[] = [];
  let files = 1;
  const fail = (message: string, path: (string | number)[] = []): Project => ({ ok: false, error: at(src.file, lineAt(src.lines, path), message) });

  /** Another file, read, bounded and interpolated; its path from the repository's root. */
  const load = async (path: string, from: string): Promise<{ ok: true; root: Mapping } | { ok: false; error: string }> => {
    // Compose also fetches files from git and OCI remotes: Hoist reads the repository alone.
    if (path.split("/").some((part) => /^[a-z][a-z0-9+.-]*:/i.test(part)))
      return { ok: false, error: `${from}: ${path} is a remote file, which is not supported yet: copy it into the repository` };
    if (++files > MAX_FILES) return { ok: false, error: `${from}: more than ${MAX_FILES} compose files (include, extends, overrides): merge some of them` };
    const text = src.readFile ? await src.readFile(path) : undefined;
    if (text === undefined) return { ok: false, error: `${from}: ${path} is not in the repository at this commit` };
    const read = await readYamlFile(text, { file: path, limits: COMPOSE_FILE_LIMITS, merge: true });
    if (!read.ok) return read;
    const done = interpolate(read.value, (name) => (Object.hasOwn(src.variables, name) ? src.variables[name] : undefined));
    if (!done.ok) return { ok: false, error: at(path, lineAt(read.lines, done.path), done.error) };
    for (const u of done.unset) unset.push({ name: u.name, file: path });
    const root = done.value ?? {};
    return isMapping(root) ? { ok: true, root } : { ok: false, error: `${path}: expected a mapping with a "services" key` };
  };

  let root = main;
  for (const o of src.overrides ?? []) {
    files++;
    const read = await readYamlFile(o.text, { file: o.file, limits: COMPOSE_FILE_LIMITS, merge: true });
    if (!read.ok) return read;
    const done = interpolate(read.value, (name) => (Object.hasOwn(src.variables, name) ? src.variables[name] : undefined));
    if (!done.ok) return { ok: false, error: at(o.file, lineAt(read.lines, done.path), done.error) };
    for (const u of done.unset) unset.push({ name: u.name, file: o.file });
    if (!isMapping(done.value ?? {})) return { ok: false, error: `${o.file}: expected a mapping with a "services" key` };
    root = mergeFiles([root, (done.value ?? {}) as Mapping]);
  }

  // include: each file's resources join the project; one defined twice is an error, as in Compose.
  const included = await includeAll(root, src.file, 0);
  if (!included.ok) return included;
  root = included.root;

  const services = root.services;
  if (!isMapping(services)) return { ok: true, root: settle(root) as Mapping, unset };
  const resolved: Mapping = {};
  for (const name of Object.keys(services)) {
    const r = await extendsOf(services, name, src.file, []);
    if (!r.ok) return fail(r.error, ["services", name, "extends"]);
    resolved[name] = r.service;
  }
  return { ok: true, root: settle({ ...root, services: resolved }) as Mapping, unset };

  async function includeAll(project: Mapping, file: string, depth: number): Promise<{ ok: true; root: Mapping } | { ok: false; error: string }> {
    const list = project.include;
    if (list === undefined || list === null) return { ok: true, root: project };
    const { include: _include, ...rest } = project;
    let out: Mapping = rest;
    if (!Array.isArray(list)) return { ok: false, error: `${file}: include: expected a list of files` };
    if (depth > MAX_DEPTH) return { ok: false, error: `${file}: include: nested more than ${MAX_DEPTH} deep (a cycle?)` };
    for (const entry of list) {
      const paths = typeof entry === "string" ? [entry] : isMapping(entry) ? (Array.isArray(entry.path) ? entry.path : [entry.path]) : [];
      if (isMapping(entry) && (entry.project_directory !== undefined || entry.env_file !== undefined))
        return { ok: false, error: `${file}: include: project_directory and env_file are not supported yet: include the file alone` };
      if (paths.length === 0 || paths.some((p) => typeof p !== "string")) return { ok: false, error: `${file}: include: expected a path, or a mapping with path` };
      const merged: Mapping[] = [];
      for (const p of paths as string[]) {
        const path = relative(file, p);
        if (path === undefined) return { ok: false, error: `${file}: include: ${p} is outside the repository` };
        const loaded = await load(path, file);
        if (!loaded.ok) return loaded;
        const nested = await includeAll(loaded.root, path, depth + 1);
        if (!nested.ok) return nested;
        merged.push(nested.root);
      }
      const add = mergeFiles(merged);
      for (const key of ["services", "volumes", "networks", "secrets", "configs"]) {
        const theirs = add[key];
        if (!isMapping(theirs)) continue;
        const ours = isMapping(out[key]) ? (out[key] as Mapping) : {};
        const twice = Object.keys(theirs).find((k) => Object.hasOwn(ours, k));
        if (twice) return { ok: false, error: `${file}: ${key}.${twice} is defined here and in the included ${paths.join(", ")}: rename one` };
        out = { ...out, [key]: { ...ours, ...theirs } };
      }
    }
    return { ok: true, root: out };
  }

  /** A service with its `extends` chain merged in, base first. */
  async function extendsOf(all: Mapping, name: string, file: string, chain: string[]): Promise<{ ok: true; service: unknown } | { ok: false; error: string }> {
    const service = all[name];
    if (!isMapping(service) || service.extends === undefined || service.extends === null) return { ok: true, service };
    const key = `${file}:${name}`;
    if (chain.includes(key)) return { ok: false, error: `services.${name}.extends: a cycle (${[...chain, key].join(" → ")})` };
    if (chain.length >= MAX_DEPTH) return { ok: false, error: `services.${name}.extends: more than ${MAX_DEPTH} services deep` };
    const ext = typeof service.extends === "string" ? { service: service.extends } : service.extends;
    if (!isMapping(ext) || typeof ext.service !== "string") return { ok: false, error: `services.${name}.extends: expected a service name, or a mapping with service and file` };
    let from = all;
    let baseFile = file;
    if (ext.file !== undefined) {
      if (typeof ext.file !== "string") return { ok: false, error: `services.${name}.extends.file: expected a path` };
      const path = relative(file, ext.file);
      if (path === undefined) return { ok: false, error: `services.${name}.extends.file: ${ext.file} is outside the repository` };
      const loaded = await load(path, file);
      if (!loaded.ok) return loaded;
      from = isMapping(loaded.root.services) ? loaded.root.services : {};
      baseFile = path;
    }
    if (!Object.hasOwn(from, ext.service)) return { ok: false, error: `services.${name}.extends: no service "${ext.service}" in ${baseFile}` };
    const base = await extendsOf(from, ext.service, baseFile, [...chain, key]);
    if (!base.ok) return base;
    const { extends: _extends, ...own } = service;
    return { ok: true, service: isMapping(base.service) ? mergeService(base.service, own) : own };
  }
}

/** `path` relative to the file that names it, from the repository's root; undefined outside it. */
export function relative(from: string, path: string): string | undefined {
  if (path.startsWith("/")) return undefined;
  const dir = from.includes("/") ? from.slice(0, from.lastIndexOf("/") + 1) : "";
  const parts: string[] = [];
  for (const p of `${dir}${path}`.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else parts.push(p);
  }
  return parts.join("/");
}
