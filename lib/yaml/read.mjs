// Reads one untrusted YAML document into plain JS within bounds. Runs inside the parse worker
// (worker.mjs); plain JavaScript so that the worker loads the same way under Node, tsx and vitest.
// Types: read.d.mts.
import { CST, isAlias, isMap, isScalar, isSeq, Lexer, LineCounter, parseDocument } from "yaml";

class Refusal extends Error {
  /** @param {number | undefined} line @param {string} message */
  constructor(line, message) {
    super(message);
    this.line = line;
  }
}

/**
 * @param {string} text
 * @param {import("./read.d.mts").ReadOptions} options
 * @returns {import("./read.d.mts").ReadResult}
 */
export function readYaml(text, options) {
  try {
    return { ok: true, ...convert(text, options) };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, ...(e.line !== undefined ? { line: e.line } : {}), message: e.message };
    // The bounds keep the parser's own recursion shallow; this is the last line of defence.
    if (e instanceof RangeError) return { ok: false, message: `could not be read: ${e.message}` };
    throw e;
  }
}

/** The keys of the markers `!reset` and `!override` leave (no YAML document can write a NUL in a key by accident). */
export const RESET = "\u0000reset";
export const OVERRIDE = "\u0000override";

/**
 * @param {string} text
 * @param {import("./read.d.mts").ReadOptions} options
 */
function convert(text, { limits, merge }) {
  prescan(text, limits);
  const lineCounter = new LineCounter();
  // uniqueKeys is quadratic in yaml (it compares each key with all before it): duplicates are
  // refused below with a Set per mapping instead.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0].line ?? lineCounter.linePos(yamlError.pos[0]).line;
    throw new Refusal(line, `invalid YAML: ${(yamlError.message.split("\n")[0] ?? "").slice(0, 300)}`);
  }
  /** @param {{ range?: readonly number[] | null } | null | undefined} node */
  const lineOf = (node) => lineCounter.linePos(node?.range?.[0] ?? 0).line;

  /** @type {Map<string, unknown>} the latest node bearing each anchor, in document order */
  const anchors = new Map();
  /** @type {Map<unknown, { value: unknown; tree: import("./read.d.mts").LineTree; nodes: number; chars: number }>} */
  const anchored = new Map();
  let nodes = 0;
  let chars = 0;
  let viaAlias = false;

  const count = (/** @type {number} */ n, /** @type {number} */ c, /** @type {unknown} */ at) => {
    nodes += n;
    chars += c;
    if (nodes > limits.maxNodes) throw new Refusal(lineOf(/** @type {never} */ (at)), viaAlias ? `aliases expand to more than ${limits.maxNodes} nodes` : `more than ${limits.maxNodes} nodes`);
    if (chars > limits.maxChars) throw new Refusal(lineOf(/** @type {never} */ (at)), viaAlias ? `aliases expand to more than ${limits.maxChars} characters` : `more than ${limits.maxChars} characters`);
  };

  /** @returns {string} */
  const keyOf = (/** @type {unknown} */ key, /** @type {unknown} */ map) => {
    if (!isScalar(key)) throw new Refusal(lineOf(/** @type {never} */ (isAlias(key) || isMap(key) || isSeq(key) ? key : map)), "a mapping key must be a plain value, not a mapping, list or alias");
    const k = key.value === null || key.value === undefined ? "" : String(key.value);
    if (k.length > limits.maxScalarChars) throw new Refusal(lineOf(key), `a key longer than ${limits.maxScalarChars} characters`);
    count(1, k.length, key);
    return k;
  };

  /**
   * @param {unknown} node
   * @param {number} depth of the collections around this node
   * @returns {{ value: unknown; tree: import("./read.d.mts").LineTree }}
   */
  const visit = (node, depth) => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) throw new Refusal(lineOf(node), `alias *${node.source} is not defined`);
      const done = anchored.get(target);
      if (!done) throw new Refusal(lineOf(node), `alias *${node.source} is used inside the node it names`);
      // Measured by what it expands to (memoized per anchor), not by how many aliases there are.
      const outer = viaAlias;
      viaAlias = true;
      count(done.nodes, done.chars, node);
      viaAlias = outer;
      return done;
    }
    const anchor = /** @type {{ anchor?: string }} */ (node ?? {}).anchor;
    if (anchor) anchors.set(anchor, node);
    const before = { nodes, chars };
    const result = tagged(node, visitNode(node, depth));
    if (anchor) anchored.set(node, { ...result, nodes: nodes - before.nodes, chars: chars - before.chars });
    return result;
  };

  /**
   * Compose's `!reset` (drop what an earlier file or an extended service gave this key) and
   * `!override` (replace it whole, without merging), kept as markers for the merge (see
   * lib/compose/merge.ts); other tags are read as YAML reads the value.
   * @param {unknown} node
   * @param {{ value: unknown; tree: import("./read.d.mts").LineTree }} result
   */
  const tagged = (node, result) => {
    const tag = /** @type {{ tag?: string }} */ (node ?? {}).tag;
    if (!merge || (tag !== "!reset" && tag !== "!override")) return result;
    return { value: tag === "!reset" ? { [RESET]: true } : { [OVERRIDE]: result.value }, tree: result.tree };
  };

  /** @returns {{ value: unknown; tree: import("./read.d.mts").LineTree }} */
  const visitNode = (/** @type {unknown} */ node, /** @type {number} */ depth) => {
    const line = lineOf(/** @type {never} */ (node));
    if (node === null || node === undefined) {
      count(1, 0, node);
      return { value: null, tree: { line } };
    }
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v === "string") {
        if (v.length > limits.maxScalarChars) throw new Refusal(line, `a value longer than ${limits.maxScalarChars} characters`);
        count(1, v.length, node);
        return { value: v, tree: { line } };
      }
      if (v === null || typeof v === "number" || typeof v === "boolean") {
        count(1, 0, node);
        return { value: v, tree: { line } };
      }
      throw new Refusal(line, `a ${(node.tag ?? "tagged").replace("tag:yaml.org,2002:", "!!")} value is not supported here`);
    }
    if (depth + 1 > limits.maxDepth) throw new Refusal(line, `nested deeper than ${limits.maxDepth} levels`);
    if (isSeq(node)) {
      count(1, 0, node);
      /** @type {unknown[]} */
      const value = [];
      /** @type {Map<string | number, import("./read.d.mts").LineTree>} */
      const children = new Map();
      for (const item of node.items) {
        const child = visit(item, depth + 1);
        children.set(value.length, child.tree);
        value.push(child.value);
      }
      return { value, tree: { line, children } };
    }
    if (isMap(node)) {
      count(1, 0, node);
      /** @type {Record<string, unknown>} no prototype: a key "__proto__" is a key like any other */
      const value = Object.create(null);
      /** @type {Map<string | number, import("./read.d.mts").LineTree>} */
      const children = new Map();
      const explicit = new Set();
      for (const pair of node.items) {
        if (merge && isScalar(pair.key) && typeof pair.key.value === "symbol") {
          // YAML 1.1 merge key: the first source that has a key wins, explicit keys win over all.
          count(1, 0, pair.key);
          for (const source of mergeSources(pair.value, depth + 1)) {
            for (const [k, v] of Object.entries(/** @type {object} */ (source.value))) {
              if (Object.hasOwn(value, k)) continue;
              value[k] = v;
              const t = source.tree.children?.get(k);
              if (t) children.set(k, t);
            }
          }
          continue;
        }
        const k = keyOf(pair.key, node);
        if (explicit.has(k)) throw new Refusal(lineOf(/** @type {never} */ (pair.key)), `invalid YAML: Map keys must be unique ("${k.slice(0, 80)}" is repeated)`);
        explicit.add(k);
        const child = visit(pair.value, depth + 1);
        value[k] = child.value;
        children.set(k, { line: lineOf(/** @type {never} */ (pair.key)), ...(child.tree.children ? { children: child.tree.children } : {}) });
      }
      return { value, tree: { line, children } };
    }
    throw new Refusal(line, "unsupported YAML node");
  };

  /** `<<: *a`, `<<: [*a, *b]` or `<<: { ... }`: each source must be a mapping. */
  const mergeSources = (/** @type {unknown} */ node, /** @type {number} */ depth) => {
    const items = isSeq(node) ? node.items : [node];
    if (isSeq(node)) count(1, 0, node);
    return items.map((item) => {
      const source = visit(item, depth);
      if (typeof source.value !== "object" || source.value === null || Array.isArray(source.value))
        throw new Refusal(lineOf(/** @type {never} */ (item)), "<< merges mappings only (an alias to a mapping, or a list of them)");
      return source;
    });
  };

  const root = visit(doc.contents, 0);
  return { value: root.value, lines: root.tree };
}

/**
 * Refuses deep nesting before yaml composes the document: yaml's composer recurses once per
 * level, and at tens of thousands of levels it overflows the stack or aborts the whole process
 * (V8 "RegExpCompiler Allocation failed", which no worker boundary contains). Flow brackets and
 * block indicators on one line each open a level; indentation bounds the levels opened across
 * lines. The exact depth is checked again on the composed document.
 * @param {string} text
 * @param {import("./read.d.mts").YamlLimits} limits
 */
function prescan(text, limits) {
  let line = 1;
  let flow = 0;
  let onLine = 0;
  let lineStart = true;
  let scalarText = false;
  for (const token of new Lexer().lex(text)) {
    // After the scalar marker comes a scalar's source, whatever its first character.
    const type = scalarText ? "scalar-text" : CST.tokenType(token);
    scalarText = type === "scalar";
    switch (type) {
      case "flow-map-start":
      case "flow-seq-start":
        flow++;
        break;
      case "flow-map-end":
      case "flow-seq-end":
        flow = Math.max(0, flow - 1);
        break;
      case "seq-item-ind":
      case "explicit-key-ind":
        onLine++;
        break;
      case "map-value-ind":
        if (flow === 0) onLine++;
        break;
      case "newline":
        onLine = 0;
        lineStart = true;
        line++;
        continue;
      case "space":
        if (lineStart && flow === 0 && token.length > limits.maxIndent) throw new Refusal(line, `indented more than ${limits.maxIndent} columns`);
        break;
    }
    lineStart = false;
    if (flow + onLine > limits.maxDepth) throw new Refusal(line, `nested deeper than ${limits.maxDepth} levels`);
    for (let i = token.indexOf("\n"); i >= 0; i = token.indexOf("\n", i + 1)) line++;
  }
}
