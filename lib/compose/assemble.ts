import { isMapping } from "./merge.ts";
import { loadProject } from "./project.ts";
import { interpolate } from "./interpolate.ts";
import type { Refusal } from "./refusals.ts";
import { readYamlFile } from "../yaml/isolate.ts";
import { COMPOSE_FILE_LIMITS } from "../yaml/limits.ts";
import { at, lineAt, type Path } from "../yaml/locate.ts";
import type { LineTree } from "../yaml/read.mjs";

/** A compose project as Compose assembles it: interpolated, overrides merged, includes added, extends resolved. */
export interface Doc {
  root: Record<string, unknown>;
  lines: LineTree;
  file: string;
}

/** Something to tell the user about a line, sorted by it. */
export interface Warning {
  line: number;
  text: string;
}

export interface AssembleOptions {
  /** The name used in messages. */
  file: string;
  /** Values for `${VAR}`. */
  variables: Readonly<Record<string, string>>;
  /** Variables that are secrets, by name: one is never interpolated. */
  secrets?: ReadonlySet<string>;
  overrides?: readonly { file: string; text: string }[] | undefined;
  readFile?: ((path: string) => Promise<string | undefined>) | undefined;
}

export type Failure = { ok: false; error: string; reason: Refusal };

/**
 * Reads a compose file and what it brings in, as `docker compose config` would, before anything
 * looks at its services. Unset variables come back as warnings (Compose's blank string).
 */
export async function assemble(text: string, options: AssembleOptions): Promise<{ ok: true; doc: Doc; unset: Warning[] } | Failure> {
  const { file, secrets } = options;
  // A secret's name is never looked up, even where the variables give it a value (the
  // repository's .env can): the environment's variable is the one that counts, and it reaches a
  // container only as a file.
  const variables = secrets?.size ? Object.fromEntries(Object.entries(options.variables).filter(([name]) => !secrets.has(name))) : options.variables;
  const read = await readYamlFile(text, { file, limits: COMPOSE_FILE_LIMITS, merge: true });
  if (!read.ok) return invalid(read.error);
  const { lines } = read;
  // hasOwn: a variable named "constructor" is not set unless it is.
  const interpolated = interpolate(read.value, (name) => (Object.hasOwn(variables, name) ? variables[name] : undefined));
  if (!interpolated.ok) return invalid(at(file, lineAt(lines, interpolated.path), interpolated.error));
  const hidden = interpolated.unset.find(({ name }) => secrets?.has(name));
  if (hidden)
    return invalid(
      at(file, lineAt(lines, hidden.path), `"${hidden.name}" is a secret of this environment: a secret reaches a container only as a file, through secrets: (secrets: { ${hidden.name.toLowerCase()}: { environment: ${hidden.name} } })`),
    );
  const unset: Warning[] = interpolated.unset.map(({ name, path }) => ({ line: lineAt(lines, path), text: at(file, lineAt(lines, path), `the "${name}" variable is not set: defaulting to a blank string`) }));
  const main = interpolated.value ?? {};
  if (!isMapping(main)) return invalid(at(file, lineAt(lines, []), '(file): expected a mapping with a "services" key'));
  const project = await loadProject(main, { file, lines, variables, readFile: options.readFile, overrides: options.overrides });
  if (!project.ok) return { ok: false, reason: /not supported yet/.test(project.error) ? "not-yet" : "invalid", error: project.error };
  for (const u of project.unset) unset.push({ line: 0, text: `${u.file}: the "${u.name}" variable is not set: defaulting to a blank string` });
  return { ok: true, doc: { root: project.root, lines, file }, unset };
}

export function warning(doc: Doc, path: Path, message: string): Warning {
  const line = lineAt(doc.lines, path);
  return { line, text: at(doc.file, line, message) };
}

/** The warnings' texts, each once, in line order. */
export function warningTexts(ws: Warning[]): string[] {
  const seen = new Set<string>();
  return ws
    .filter((w) => !seen.has(w.text) && seen.add(w.text))
    .sort((a, b) => a.line - b.line)
    .map((w) => w.text);
}

export function invalid(error: string): Failure {
  return { ok: false, reason: "invalid", error };
}

/** A compose error at `path`'s line. */
export function failAt(doc: Doc, path: Path, message: string, reason: Refusal = "invalid"): Failure {
  return { ok: false, reason, error: at(doc.file, lineAt(doc.lines, path), message) };
}
