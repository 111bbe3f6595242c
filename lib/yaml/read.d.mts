import type { YamlLimits } from "./limits.ts";

export type { YamlLimits };

/** The line of each node of a read document, shaped like the value (map keys and list indexes). */
export interface LineTree {
  /** A map entry's line is its key's; a list item's is the item's. */
  line: number;
  children?: Map<string | number, LineTree>;
}

export interface ReadOptions {
  limits: YamlLimits;
  /** YAML 1.1 `<<` merge keys (Compose files use them with `x-*` anchors). */
  merge: boolean;
}

export type ReadResult = { ok: true; value: unknown; lines: LineTree } | { ok: false; line?: number; message: string };

/** Reads one YAML document into plain values within `limits`; never throws for any input. */
export function readYaml(text: string, options: ReadOptions): ReadResult;

/** The keys of the markers Compose's `!reset` and `!override` tags leave in a compose file's value. */
export declare const RESET: string;
export declare const OVERRIDE: string;
