import { stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { build, type Plugin } from "esbuild";
import { LAMBDA_FUNCTIONS, type LambdaFunction } from "./functions.ts";

export interface Bundle {
  name: LambdaFunction;
  file: string;
  bytes: number;
}

const ROOT = resolve(import.meta.dirname, "../..");

/**
 * Bundles each function with esbuild: ESM for Node 22 and later (the stack runs 24), minified and
 * tree-shaken, the AWS SDK included (the runtime's own copy changes under us). Packages
 * written as CommonJS still call `require` for Node's built-ins, which an ES module lacks:
 * the banner gives them one, and the __dirname and __filename some of them read.
 */
export async function bundleFunctions(opts: { outDir?: string; only?: readonly LambdaFunction[] } = {}): Promise<Bundle[]> {
  const outDir = opts.outDir ?? join(ROOT, "dist/lambda");
  const names = opts.only ?? LAMBDA_FUNCTIONS;
  return Promise.all(
    names.map(async (name) => {
      const file = join(outDir, name, "index.mjs");
      return { name, file, bytes: await bundleForLambda(join(ROOT, "functions", `${name}.ts`), file) };
    }),
  );
}

/** One entry bundled as a Lambda function's is (bench/coldstart also times a bare one); gives its size. */
export async function bundleForLambda(entry: string, file: string): Promise<number> {
  await build({
    entryPoints: [entry],
    outfile: file,
    bundle: true,
    platform: "node",
    target: "node22",
    format: "esm",
    // Packages' ES builds first (Node's default is their CommonJS): the AWS SDK's tree-shake, and
    // skip CommonJS's wrappers at import (the webhook: 901 KiB before, 694 KiB now).
    mainFields: ["module", "main"],
    minify: true,
    treeShaking: true,
    sourcemap: "linked",
    legalComments: "none",
    // ssh2's optional native speed-ups: it falls back to JavaScript without them.
    external: ["cpu-features", "*.node"],
    banner: {
      js: 'import { createRequire as __hoistRequire } from "node:module"; import { dirname as __hoistDirname } from "node:path"; import { fileURLToPath as __hoistPath } from "node:url"; const require = __hoistRequire(import.meta.url); const __filename = __hoistPath(import.meta.url); const __dirname = __hoistDirname(__filename);',
    },
    nodePaths: [join(ROOT, "node_modules")],
    plugins: [englishOnlyZod],
    logLevel: "error",
  });
  return (await stat(file)).size;
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
    plugins: [englishOnlyZod],
    logLevel: "error",
  });
  return { file, bytes: (await stat(file)).size, inputs: Object.keys(result.metafile.inputs) };
}

/**
 * zod's `z` namespace re-exports every locale of its messages (about 260 KB minified) and so
 * keeps them all in a bundle, though Hoist sets none and answers in English: the namespace's
 * locales module is given only English.
 */
const englishOnlyZod: Plugin = {
  name: "english-only-zod",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes("/node_modules/zod/") ? { path: join(args.resolveDir, "../locales/index.js"), namespace: "zod-locales" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "zod-locales" }, (args) => ({ contents: 'export { default as en } from "./en.js";', resolveDir: dirname(args.path), loader: "js" }));
  },
};
