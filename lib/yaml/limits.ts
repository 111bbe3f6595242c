/**
 * Bounds on one untrusted YAML file (pipeline or compose). Node and character counts are
 * of the document as read, aliases and merge keys expanded, so a billion laughs is refused
 * by what it would become however few aliases it uses.
 */
export interface YamlLimits {
  /** The file's size in UTF-8 bytes, checked before any parsing. */
  maxBytes: number;
  /** Nested mappings and lists. */
  maxDepth: number;
  /** Leading spaces of a line (indentation is how block nesting grows across lines). */
  maxIndent: number;
  /** Scalars, keys, mappings and lists, aliases expanded. */
  maxNodes: number;
  /** Characters of all keys and string values, aliases expanded. */
  maxChars: number;
  /** One key or string value. */
  maxScalarChars: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** What no real pipeline or compose file comes near, shared by both. */
const COMMON = { maxDepth: 64, maxIndent: 1000, maxScalarChars: 64 * KiB } as const;

/** `.hoist.yml`: small by nature, and its parsed form ends up in run records. */
export const HOIST_FILE_LIMITS: YamlLimits = { ...COMMON, maxBytes: 256 * KiB, maxNodes: 20_000, maxChars: 1 * MiB };

/** Compose files: larger (many services, `x-*` anchors merged into each). */
export const COMPOSE_FILE_LIMITS: YamlLimits = { ...COMMON, maxBytes: 1 * MiB, maxNodes: 200_000, maxChars: 8 * MiB };

/** A size for messages: "256 KiB", "1 MiB". */
export function formatBytes(n: number): string {
  return n % MiB === 0 ? `${n / MiB} MiB` : n % KiB === 0 ? `${n / KiB} KiB` : `${n} bytes`;
}
