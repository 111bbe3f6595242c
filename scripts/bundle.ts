// npm run bundle: one ESM bundle per Lambda function, dist/lambda/<name>/index.mjs; with --edge
// (npm run bundle:edge), the webhook as a Cloudflare Worker, dist/edge/index.mjs (README, Serverless).
import { parseArgs } from "node:util";
import { bundleEdge, bundleFunctions } from "../lib/bundles/bundle.ts";

const { values } = parseArgs({ options: { edge: { type: "boolean", default: false } } });
const built = values.edge ? [{ name: "edge", ...(await bundleEdge()) }] : await bundleFunctions();
for (const b of built) console.log(`${b.name.padEnd(10)} ${(b.bytes / 1024).toFixed(0).padStart(6)} KiB  ${b.file}`);
