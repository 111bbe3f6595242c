import { at, formatPath, lineAt, type Path } from "../yaml/locate.ts";
import type { LineTree } from "../yaml/read.mjs";
import type { KeysRead } from "./service-schema.ts";

/**
 * The Compose keys Hoist does not act on yet (secrets, configs, logging, ...): never dropped
 * silently, each is a warning naming its line, which the deploy stage logs. `x-*` extensions
 * belong to other tools and are left alone. A `*` in the keys read stands for any key.
 */

export interface KeyWarning {
  line: number;
  text: string;
}

/** One warning per ignored key of the file's top level (read as `file`) and of each released service (read as `service`). */
export function ignoredKeys(root: Record<string, unknown>, services: readonly string[], lines: LineTree, file: string, read: { file: KeysRead; service: KeysRead }): KeyWarning[] {
  const warnings: KeyWarning[] = [];
  const walk = (value: unknown, keys: KeysRead, path: Path) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      if (key.startsWith("x-")) continue;
      const known = keys[key] ?? keys["*"];
      const here = [...path, key];
      if (known === undefined) {
        const line = lineAt(lines, here);
        warnings.push({ line, text: at(file, line, `${formatPath(here)} is not released by Hoist yet and is ignored`) });
      } else if (known !== true) walk(child, known, here);
    }
  };
  walk(root, read.file, []);
  const all = root.services as Record<string, unknown>;
  for (const service of services) walk(all[service], read.service, ["services", service]);
  return warnings;
}
