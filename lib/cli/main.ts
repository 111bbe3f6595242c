import { Command, Option } from "commander";
import { ConfigError, loadCliConfig, LOCAL_URL, quietAwsSdkNotices, type CliConfig } from "../config.ts";
import { registerDemo } from "../demo/command.ts";
import { HoistClient } from "./client.ts";
import type { CliContext, Target } from "./context.ts";
import { registerEnvironments } from "./environments.ts";
import { registerInvoke } from "./invoke.ts";
import { registerRegistries } from "./registries.ts";
import { createOutput } from "./output.ts";
import { registerRuns } from "./runs.ts";
import { registerStart } from "./start.ts";

/**
 * The `hoist` command line: run Hoist locally, look at runs, environments and releases, and
 * a demo that pushes a sample app through the whole pipeline. Each command group lives in
 * a file of its own; this one reads the settings once and assembles them.
 */

quietAwsSdkNotices();

let cli: CliConfig;
try {
  cli = loadCliConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`hoist: ${err.message}\n`);
  process.exit(2);
}
const out = createOutput(cli);

const program = new Command()
  .name("hoist")
  .description("Hoist: a git push becomes a built, tested, released image.")
  .addOption(new Option("--url <url>", "URL of a running Hoist (env HOIST_URL)").default(cli.HOIST_URL ?? LOCAL_URL))
  .addOption(new Option("--token <token>", "API token of that Hoist: its HOIST_API_TOKEN (env HOIST_API_TOKEN)").default(cli.HOIST_API_TOKEN))
  .showHelpAfterError("(run `hoist --help` for usage)")
  .configureOutput({ outputError: (text, write) => write(out.usageError(text)) });

function target(): Target {
  const { url, token } = program.opts<{ url: string; token?: string }>();
  return { url, token, remote: program.getOptionValueSource("url") === "cli" || cli.HOIST_URL !== undefined };
}

const ctx: CliContext = {
  cli,
  out,
  target,
  client: () => {
    const { url, token } = target();
    return new HoistClient({ url, token });
  },
};

registerStart(program, ctx);
registerRuns(program, ctx);
registerEnvironments(program, ctx);
registerRegistries(program, ctx);
registerDemo(program, ctx);
registerInvoke(program, ctx);

// `hoist runs | head` closes the pipe early: that is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  out.fail(err);
}
// A library handle left open (an idle socket, a worker) must not keep a finished command alive.
setTimeout(() => process.exit(), 3_000).unref();
