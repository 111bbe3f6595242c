import type * as z from "zod";
import type { LineTree } from "./read.mjs";

/**
 * Where a mistake in a YAML file is: `FILE:LINE: path: message`, for pipeline and compose
 * files alike. Lines come from the LineTree the reader returns with each document.
 */

export type Path = readonly (string | number)[];

/** `file:line: message`, or `file: message` when there is no line. */
export function at(file: string, line: number | undefined, message: string): string {
  return line === undefined ? `${file}: ${message}` : `${file}:${line}: ${message}`;
}

/** The line of the deepest node on `path` that exists (a missing key points at its parent). */
export function lineAt(tree: LineTree, path: Path): number {
  let node = tree;
  for (const key of path) {
    const next = node.children?.get(key);
    if (!next) break;
    node = next;
  }
  return node.line;
}

/** `a.b[2].c`; "(file)" for the document itself. */
export function formatPath(path: Path): string {
  if (path.length === 0) return "(file)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

/**
 * zod's issues as `FILE:LINE: path: message`, joined with "; " (the first few: one mistake
 * often causes the next). `prefix` is where the parsed value sits in the document.
 */
export function describeIssues(file: string, lines: LineTree, issues: readonly z.core.$ZodIssue[], prefix: Path = []): string {
  return issues
    .slice(0, 5)
    .map((issue) => {
      const path = [...prefix, ...issue.path.filter((p): p is string | number => typeof p !== "symbol")];
      const message = issue.code === "unrecognized_keys" ? unknownFields(issue.keys) : issue.message;
      return at(file, lineAt(lines, path), `${formatPath(path)}: ${message}`);
    })
    .join("; ");
}

/** `unknown field "a", "b"`: the first few (a file may hold thousands), each cut short. */
function unknownFields(keys: readonly string[]): string {
  const shown = keys.slice(0, 5).map((k) => `"${k.length > 80 ? `${k.slice(0, 80)}...` : k}"`);
  return `unknown field ${shown.join(", ")}${keys.length > 5 ? ` and ${keys.length - 5} more` : ""}`;
}
