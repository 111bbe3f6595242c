import { isMap, isSeq, LineCounter, parseDocument, type Node } from "yaml";
import type { z } from "zod";
import { HoistFile } from "./schema.ts";

/** The pipeline file's conventional path in the application repository. */
export const HOIST_FILE = ".hoist.yml";

export type ParsedConfig = { ok: true; file: HoistFile } | { ok: false; error: string };

/**
 * Parses `.hoist.yml`. A broken file never throws: the error names the line and the
 * field (`.hoist.yml:7: pipelines.main.stages[1].test.timeout: expected number`), so a
 * run can fail with it and the user can fix the file.
 */
export function parseHoistFile(text: string): ParsedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0].line ?? lines.linePos(yamlError.pos[0]).line;
    return { ok: false, error: `${HOIST_FILE}:${line}: invalid YAML: ${firstLine(yamlError.message)}` };
  }
  const result = HoistFile.safeParse(doc.toJS());
  if (result.success) return { ok: true, file: result.data };
  const messages = result.error.issues.slice(0, 5).map((issue) => describeIssue(issue, doc.contents, lines));
  return { ok: false, error: messages.join("; ") };
}

function describeIssue(issue: z.core.$ZodIssue, root: unknown, lines: LineCounter): string {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const line = lineOf(root, path, lines);
  const where = path.length ? formatPath(path) : "(file)";
  let message = issue.message;
  if (issue.code === "unrecognized_keys") message = `unknown field ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  return `${HOIST_FILE}:${line}: ${where}: ${message}`;
}

/** The line of the deepest node on `path` that exists (a missing key points at its parent). */
function lineOf(root: unknown, path: readonly (string | number)[], lines: LineCounter): number {
  let node = root as Node | undefined;
  let best = node?.range?.[0] ?? 0;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) break;
      best = (pair.key as Node).range?.[0] ?? best;
      node = pair.value as Node | undefined;
    } else if (isSeq(node) && typeof key === "number") {
      node = node.items[key] as Node | undefined;
      if (!node) break;
      best = node.range?.[0] ?? best;
    } else break;
  }
  return lines.linePos(best).line;
}

function formatPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}
