import { at, formatPath, lineAt, type Path } from "../yaml/locate.ts";
import type { LineTree } from "../yaml/read.mjs";
import { SERVICE_KEYS_READ, type KeysRead } from "./compose-schema.ts";

/**
 * The Compose keys Hoist does not act on yet (volumes, networks, env_file, secrets, depends_on,
 * labels, ...): never dropped silently, each is a warning naming its line, which the deploy stage
 * logs. `x-*` extensions belong to other tools and are left alone.
 */

/** Top-level keys with nothing to release: the project's name, and the obsolete version. */
const FILE_KEYS_READ: KeysRead = { services: true, name: true, version: true };

/** One warning per ignored key of the file's top level and of the released service, in file order. */
export function ignoredKeys(root: Record<string, unknown>, service: string, lines: LineTree, file: string): string[] {
  const warnings: { line: number; text: string }[] = [];
  const walk = (value: unknown, read: KeysRead, path: Path) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (key.startsWith("x-")) continue;
      const known = read[key];
      const here = [...path, key];
      if (known === undefined) {
        const line = lineAt(lines, here);
        warnings.push({ line, text: at(file, line, `${formatPath(here)} is not released by Hoist yet and is ignored`) });
      }
      else if (known !== true) walk(child, known, here);
    }
  };
  walk(root, FILE_KEYS_READ, []);
  const services = root.services as Record<string, unknown>;
  walk(services[service], SERVICE_KEYS_READ, ["services", service]);
  return warnings.sort((a, b) => a.line - b.line).map((w) => w.text);
}
