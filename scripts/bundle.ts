// npm run bundle: one ESM bundle per Lambda function, dist/lambda/<name>/index.mjs (README, Serverless: Bundles).
import { bundleFunctions } from "../lib/build/bundle.ts";

const built = await bundleFunctions();
for (const b of built) console.log(`${b.name.padEnd(10)} ${(b.bytes / 1024).toFixed(0).padStart(6)} KiB  ${b.file}`);
