import { formatPath, type Path } from "../yaml/locate.ts";

/**
 * Compose variable interpolation, as the Compose Specification defines it
 * (https://github.com/compose-spec/compose-spec/blob/main/12-interpolation.md) and compose-go
 * implements it (template/template.go, interpolation/interpolation.go): every string value of the
 * file is substituted, keys never are; numbers, booleans and nulls are left as they are.
 *
 * - `$VAR`, `${VAR}`: the value; unset gives "" and is reported in `unset` (Compose warns).
 * - `${VAR:-default}`, `${VAR-default}`: the default when VAR is unset or empty / only unset.
 * - `${VAR:?message}`, `${VAR?message}`: an error when VAR is unset or empty / only unset.
 * - `${VAR:+alt}`, `${VAR+alt}`: alt when VAR is set and not empty / set, else "".
 * - `$$` is a literal `$`; a `$` that starts no name (`$1`, `$ `, `$}`, a final `$`) stays as it is.
 * - Defaults, alternatives and messages are themselves interpolated, and only when used: an
 *   unused `${A:-$B}` neither warns about B nor fails on a mistake inside it.
 *
 * Written here: no maintained npm package implements these rules (@balena/compose-parser runs
 * compose-go as a downloaded binary; the envsubst ports have no `?`, `+` or `$$`).
 */

/** A variable's value, or undefined when it is not set (set and empty is ""). */
export type Lookup = (name: string) => string | undefined;

/** A variable used without a value or default: each variable once, where it is first used. */
export interface UnsetVariable {
  name: string;
  path: Path;
}

export type Interpolated = { ok: true; value: unknown; unset: UnsetVariable[] } | { ok: false; path: Path; error: string };

/**
 * Compose files come from untrusted repositories and variables from their `.env`: a file must not
 * make this nest without end or grow without bound. The per-scalar and total sizes match what the
 * YAML reader accepts (lib/yaml/limits.ts), so a file without variables never reaches them.
 */
export const INTERPOLATION_LIMITS = { maxDepth: 16, maxScalarChars: 64 * 1024, maxTotalChars: 8 * 1024 * 1024 } as const;

/** Interpolates every string value of a parsed YAML tree; never throws for any tree of plain values. */
export function interpolate(value: unknown, lookup: Lookup): Interpolated {
  const unset = new Map<string, Path>();
  // Aliases and merge keys repeat values (a small file can expand to 8 MiB of them): each distinct
  // value is interpolated once. Its unset variables were reported where it was first met.
  const done = new Map<string, string>();
  let at: Path = [];
  let total = 0;
  const walk = (node: unknown, path: Path): unknown => {
    if (typeof node === "string") {
      at = path;
      let out = node.includes("$") ? done.get(node) : node;
      if (out === undefined) {
        out = substitute(node, lookup, (name) => {
          if (!unset.has(name)) unset.set(name, path);
        });
        done.set(node, out);
      }
      total += out.length;
      if (total > INTERPOLATION_LIMITS.maxTotalChars) throw new Refusal((where) => `${where}: the file's values are longer than ${INTERPOLATION_LIMITS.maxTotalChars} characters in all once interpolated`);
      return out;
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    // fromEntries, not assignment: a key "__proto__" stays a key.
    if (typeof node === "object" && node !== null) return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, [...path, k])]));
    return node;
  };
  try {
    const out = walk(value, []);
    return { ok: true, value: out, unset: [...unset].map(([name, path]) => ({ name, path })) };
  } catch (e) {
    if (!(e instanceof Refusal)) throw e;
    return { ok: false, path: at, error: e.describe(formatPath(at)) };
  }
}

/** Why a value can't be interpolated; `describe` is given the value's path. */
class Refusal extends Error {
  constructor(readonly describe: (where: string) => string) {
    super("interpolation refused");
  }
}

const DOLLAR = 0x24;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const COLON = 0x3a;
const NEWLINE = 0x0a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const QUESTION = 0x3f;

// The spec's names are [_a-zA-Z][_a-zA-Z0-9]*. (compose-go's case-insensitive regexp also takes
// the Kelvin sign and the long s, by Unicode case folding; no file means that.)
const isNameStart = (c: number) => c === 0x5f || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isNameChar = (c: number) => isNameStart(c) || (c >= 0x30 && c <= 0x39);

/** One string value, interpolated; throws a Refusal. `onUnset` hears each plain variable that is not set. */
function substitute(text: string, lookup: Lookup, onUnset: (name: string) => void): string {
  const { maxDepth, maxScalarChars } = INTERPOLATION_LIMITS;

  const invalid = (from: number) =>
    new Refusal((where) => `invalid interpolation format for ${where}: ${JSON.stringify(excerpt(text, from))}; you may need to escape any $ with another $`);

  const plain = (name: string): string => {
    const value = lookup(name);
    if (value === undefined) onUnset(name);
    return value ?? "";
  };

  /** `text[from, to)` interpolated; `depth` is how many expressions it sits in. */
  const expand = (from: number, to: number, depth: number): string => {
    const code = (k: number) => (k < to ? text.charCodeAt(k) : NaN);
    let out = "";
    const push = (s: string) => {
      out += s;
      if (out.length > maxScalarChars) throw new Refusal((where) => `${where}: longer than ${maxScalarChars} characters once interpolated`);
    };
    // The current line's end and its last `}` (see below), found once per line.
    let lineEnd = -1;
    let lastClose = -1;
    let i = from;
    for (;;) {
      let d = i;
      while (d < to && text.charCodeAt(d) !== DOLLAR) d++;
      push(text.slice(i, d));
      if (d >= to) return out;
      const next = code(d + 1);
      if (next === DOLLAR) {
        push("$");
        i = d + 2;
        continue;
      }
      if (!isNameStart(next) && next !== OPEN) {
        push("$");
        i = d + 1;
        continue;
      }
      if (depth >= maxDepth) throw new Refusal((where) => `${where}: variables nested more than ${maxDepth} deep`);
      const braced = next === OPEN;
      const nameStart = braced ? d + 2 : d + 1;
      let k = nameStart;
      if (isNameStart(code(k))) while (isNameChar(code(k))) k++;
      const name = text.slice(nameStart, k);
      if (!braced) {
        push(plain(name));
        i = k;
        continue;
      }
      if (name === "") throw invalid(d);
      if (code(k) === CLOSE) {
        push(plain(name));
        i = k + 1;
        continue;
      }
      const colon = code(k) === COLON;
      const operator = code(colon ? k + 1 : k);
      if (operator !== MINUS && operator !== PLUS && operator !== QUESTION) throw invalid(d);
      const bodyStart = colon ? k + 2 : k + 1;
      // Compose matches `${NAME<op>.*}` with a regexp, so the expression can reach as far as the
      // last `}` on its line, and then cuts it at the `}` that balances its `{`.
      if (bodyStart > lineEnd) {
        lineEnd = bodyStart;
        while (lineEnd < to && text.charCodeAt(lineEnd) !== NEWLINE) lineEnd++;
        lastClose = lineEnd - 1;
        while (lastClose >= bodyStart && text.charCodeAt(lastClose) !== CLOSE) lastClose--;
      }
      if (lastClose < bodyStart) throw invalid(d);
      const end = balancingClose(text, d, lastClose);
      push(operate(name, colon, operator, bodyStart, end, depth));
      i = end + 1;
    }
  };

  /** `${name<op>body}` where `text[bodyStart, end)` is the body, expanded only when used. */
  const operate = (name: string, colon: boolean, operator: number, bodyStart: number, end: number, depth: number): string => {
    const value = lookup(name);
    const usable = value === undefined || (colon && value === "") ? undefined : value;
    const body = () => expand(bodyStart, end, depth + 1);
    if (operator === MINUS) return usable ?? body();
    if (operator === PLUS) return usable === undefined ? (value ?? "") : body();
    if (usable !== undefined) return usable;
    const reason = body();
    throw new Refusal((where) => `${where}: required variable ${name} is missing a value${reason ? `: ${clip(reason)}` : ""}`);
  };

  return expand(0, text.length, 0);
}

/**
 * The `}` closing the expression at `start` (its `$`), or `last` when none does before it. As in
 * compose-go, the character right after each `{` is never counted: `${A:-{}}x}` holds `{}}x`.
 */
function balancingClose(text: string, start: number, last: number): number {
  let open = 0;
  for (let k = start; k <= last; k++) {
    const c = text.charCodeAt(k);
    if (c === CLOSE && --open === 0) return k;
    if (c === OPEN) {
      open++;
      k++;
    }
  }
  return last;
}

const SHOWN = 80;

/** The value as it is when short, else the part from `from` on: what a message can quote. */
function excerpt(text: string, from: number): string {
  if (text.length <= SHOWN) return text;
  return `${from > 0 ? "..." : ""}${text.slice(from, from + SHOWN)}${from + SHOWN < text.length ? "..." : ""}`;
}

/** A message from the file, cut short: it ends up in a run's error. */
function clip(s: string): string {
  return s.length > 2 * SHOWN ? `${s.slice(0, 2 * SHOWN)}...` : s;
}
