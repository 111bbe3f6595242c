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
 * Bundles each function with esbuild: ESM for Node 22 (Lambda's runtime), minified and
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
      await build({
        entryPoints: [join(ROOT, "functions", `${name}.ts`)],
        outfile: file,
        bundle: true,
        platform: "node",
        target: "node22",
        format: "esm",
        minify: true,
        treeShaking: true,
        sourcemap: "linked",
        legalComments: "none",
        // ssh2's optional native speed-ups: it falls back to JavaScript without them.
        external: ["cpu-features", "*.node"],
        banner: {
          js: 'import { createRequire as __hoistRequire } from "node:module"; import { dirname as __hoistDirname } from "node:path"; import { fileURLToPath as __hoistPath } from "node:url"; const require = __hoistRequire(import.meta.url); const __filename = __hoistPath(import.meta.url); const __dirname = __hoistDirname(__filename);',
        },
        plugins: [englishOnlyZod],
        logLevel: "error",
      });
      return { name, file, bytes: (await stat(file)).size };
    }),
  );
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
