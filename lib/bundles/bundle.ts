import { rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { isBuiltin } from "node:module";
import { build, type Metafile, type Plugin } from "esbuild";
import { LAMBDA_FUNCTIONS, type LambdaFunction } from "./functions.ts";

export interface Bundle {
  name: LambdaFunction;
  file: string;
  /** All the JavaScript the function ships: its entry and every chunk. */
  bytes: number;
  /** What an import of the entry loads: the entry and the chunks it imports statically. */
  startBytes: number;
  /** The source files it holds, packages' included. */
  inputs: string[];
}

const ROOT = resolve(import.meta.dirname, "../..");

/**
 * Bundles each function with esbuild: ESM for Node 22 and later (the stack runs 24), minified and
 * tree-shaken, the AWS SDK included (the runtime's own copy changes under us). Packages
 * written as CommonJS still call `require` for Node's built-ins, which an ES module lacks:
 * the banner gives them one, and the __dirname and __filename some of them read. It takes them
 * from process.getBuiltinModule, not an import: no built-in is ever imported (builtinsRequired).
 */
export async function bundleFunctions(opts: { outDir?: string; only?: readonly LambdaFunction[] } = {}): Promise<Bundle[]> {
  const outDir = opts.outDir ?? join(ROOT, "dist/lambda");
  const names = opts.only ?? LAMBDA_FUNCTIONS;
  return Promise.all(
    names.map(async (name) => {
      const file = join(outDir, name, "index.mjs");
      return { name, file, ...(await bundleForLambda(join(ROOT, "functions", `${name}.ts`), file)) };
    }),
  );
}

/**
 * One entry bundled as a Lambda function's is (bench/coldstart also times a bare one), to
 * `file` and, beside it, the chunks it imports. Split in chunks, what the function imports only
 * when it needs it (the SDK's credential sources other than the environment, which Lambda
 * gives, and their STS and SSO clients) is not even read at a cold start: the webhook's first
 * answer came 40 ms sooner than from one file (bench/coldstart).
 */
export async function bundleForLambda(entry: string, file: string): Promise<Omit<Bundle, "name" | "file">> {
  const outdir = dirname(file);
  // Chunks are named by their content: those of an earlier build would ship too.
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { [basename(file, ".mjs")]: entry },
    outdir,
    outExtension: { ".js": ".mjs" },
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    platform: "node",
    target: "node22",
    format: "esm",
    // Packages' ES builds first (Node's default is their CommonJS): the AWS SDK's tree-shake, and
    // skip CommonJS's wrappers at import (the webhook's bundle was 23% smaller for it).
    mainFields: ["module", "main"],
    minify: true,
    treeShaking: true,
    sourcemap: "linked",
    legalComments: "none",
    // ssh2's optional native speed-ups: it falls back to JavaScript without them.
    external: ["cpu-features", "*.node"],
    banner: {
      js: 'const require = process.getBuiltinModule("node:module").createRequire(import.meta.url); const __filename = process.getBuiltinModule("node:url").fileURLToPath(import.meta.url); const __dirname = process.getBuiltinModule("node:path").dirname(__filename);',
    },
    nodePaths: [join(ROOT, "node_modules")],
    plugins: [builtinsRequired],
    // On Lambda, as on a Worker, pino is its browser build, whose lines go to the console, which
    // Lambda keeps as the function's log (lib/log.ts redacts them as on Node). Its Node build
    // writes through sonic-boom and loads thread-stream, worker_threads and assert for its
    // transports, which the functions never use: about 20 ms of the webhook's cold start.
    alias: { pino: "pino/browser.js" },
    metafile: true,
    logLevel: "error",
  });
  return { ...sizes(result.metafile, file), inputs: Object.keys(result.metafile.inputs) };
}

/**
 * Node's built-ins reached by `require`, never by an ES import. For an ES import Node makes the
 * built-in a module facade, which reads every export of it once: node:http's `WebSocket` getter
 * then loads undici, Node's fetch, which the functions never use (25 ms of a cold start,
 * bench/coldstart). A `require` hands over the exports object and runs no getter.
 */
const builtinsRequired: Plugin = {
  name: "builtins-required",
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z][a-z0-9_/]*$/ }, (args) =>
      args.kind !== "require-call" && isBuiltin(args.path) ? { path: args.path, namespace: "builtin" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: "js" }));
  },
};

/** The bytes of every JavaScript output, and of those an import of `entry` loads at once. */
function sizes(metafile: Metafile, entry: string): { bytes: number; startBytes: number } {
  const outputs = new Map(Object.entries(metafile.outputs).filter(([path]) => path.endsWith(".mjs")).map(([path, output]) => [resolve(path), output]));
  const loaded = new Set<string>();
  const visit = (path: string): void => {
    if (loaded.has(path)) return;
    loaded.add(path);
    for (const i of outputs.get(path)?.imports ?? []) if (i.kind === "import-statement" && !i.external) visit(resolve(i.path));
  };
  visit(resolve(entry));
  const total = (paths: Iterable<string>) => [...paths].reduce((sum, path) => sum + (outputs.get(path)?.bytes ?? 0), 0);
  return { bytes: total(outputs.keys()), startBytes: total(loaded) };
}

/** The webhook as a Cloudflare module Worker (functions/edge.ts): wrangler.toml's `main`. */
export const EDGE_BUNDLE = "dist/edge/index.mjs";

/**
 * Bundles functions/edge.ts for workerd as wrangler does, from packages' worker and browser
 * builds (the AWS SDK's sends through fetch), but with no Node built-ins at all (wrangler
 * would polyfill some), so a `node:` import on the edge's path fails here, not on a Worker.
 */
export async function bundleEdge(opts: { outFile?: string } = {}): Promise<{ file: string; bytes: number; inputs: string[] }> {
  const file = opts.outFile ?? join(ROOT, EDGE_BUNDLE);
  const result = await build({
    entryPoints: [join(ROOT, "functions", "edge.ts")],
    outfile: file,
    bundle: true,
    // The browser platform: packages' `browser` maps (the AWS SDK's runtime configs) apply only
    // there, and it resolves no Node built-in.
    platform: "browser",
    target: "es2022",
    format: "esm",
    conditions: ["workerd", "worker", "browser"],
    minify: true,
    treeShaking: true,
    sourcemap: "linked",
    legalComments: "none",
    metafile: true,
    logLevel: "error",
  });
  return { file, bytes: (await stat(file)).size, inputs: Object.keys(result.metafile.inputs) };
}
