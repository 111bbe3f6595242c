import { branchOrTag } from "./shape.ts";

/** What a reader looks a ref up as: a commit by its full sha, a branch or a tag. */
export type RefTarget = { sha: string } | { branch: string } | { tag: string };

const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

/**
 * How `SourceReader.resolveRef` reads a ref: a full sha (40 hex, or 64 in a SHA-256
 * repository) is a commit, `refs/heads/<name>` and `refs/tags/<name>` say which they are, and
 * a bare name is a branch (the scheduler asks for branches by name). Undefined for a ref no
 * repository can have (other ref kinds, names git-check-ref-format(1) refuses), so what
 * reaches git or a provider is never a revision expression (`main~1`, `v1^{tree}`) or an option.
 */
export function refTarget(ref: string): RefTarget | undefined {
  if (FULL_SHA.test(ref)) return { sha: ref.toLowerCase() };
  const named = ref.startsWith("refs/") ? branchOrTag(ref) : { branch: ref };
  if (named.branch !== undefined) return validRefName(named.branch) ? { branch: named.branch } : undefined;
  if (named.tag !== undefined) return validRefName(named.tag) ? { tag: named.tag } : undefined;
  return undefined;
}

/** git-check-ref-format(1)'s rules for a branch or tag name. */
function validRefName(name: string): boolean {
  return (
    name.length > 0 &&
    name !== "@" &&
    !name.startsWith("-") &&
    !name.endsWith(".") &&
    !name.includes("..") &&
    !name.includes("@{") &&
    // Control characters, space, and what revision syntax and globs use.
    !/[\x00-\x20\x7f~^:?*[\\]/.test(name) &&
    name.split("/").every((part) => part.length > 0 && !part.startsWith(".") && !part.endsWith(".lock"))
  );
}
