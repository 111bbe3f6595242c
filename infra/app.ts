// The CDK app behind `npm run synth` and `npm run deploy` (README, Deploy on AWS). It makes no
// lookups and names no account or region, so it synthesizes offline, without credentials.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Code } from "aws-cdk-lib/aws-lambda";
import type { LambdaFunction } from "../lib/bundles/functions.ts";
import { readContext } from "./context.ts";
import { HoistStack } from "./stack.ts";

const BUNDLES = join(import.meta.dirname, "..", "dist", "lambda");

/** The bundle `npm run bundle` wrote for `name`. */
function bundle(name: LambdaFunction): Code {
  const dir = join(BUNDLES, name);
  if (!existsSync(join(dir, "index.mjs"))) throw new Error(`${join(dir, "index.mjs")} is missing: run \`npm run bundle\` first (npm run synth and npm run deploy do)`);
  return Code.fromAsset(dir);
}

const app = new App();
const context = readContext((key) => app.node.tryGetContext(key));
new HoistStack(app, context.stackName, { ...context, code: bundle });
app.synth();
