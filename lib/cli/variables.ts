import type { Command } from "commander";
import { VariableName, type Variable } from "../release/variables.ts";
import type { CliContext } from "./context.ts";
import { paint, table } from "./format.ts";
import { CliError } from "./output.ts";
import { readStdinValue } from "./stdin.ts";

/** The API takes 64 KiB bodies: a value piped in beyond that (and its line ending) cannot be sent. */
const MAX_VALUE_BYTES = 64 * 1024 + 2;

/** How much of a value a table shows: the whole one is in `--json`. */
const VALUE_CELL_CHARS = 60;

/** A value on one table line: control characters escaped, cut with an ellipsis. */
function valueCell(v: Variable): string {
  if (v.secret) return "(secret)";
  // eslint-disable-next-line no-control-regex
  const flat = (v.value ?? "").replace(/[\x00-\x1f\x7f]/g, (ch) => ({ "\n": "\\n", "\r": "\\r", "\t": "\\t" })[ch] ?? `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`);
  const chars = [...flat];
  return chars.length <= VALUE_CELL_CHARS ? flat : `${chars.slice(0, VALUE_CELL_CHARS - 1).join("")}…`;
}

function variablesTable(env: string, variables: readonly Variable[], color: boolean): string {
  if (variables.length === 0) return `no variables in ${env}: set one with \`hoist env vars set ${env} KEY=VALUE\``;
  const rows = variables.map((v) => [v.name, v.secret ? "yes" : "no", valueCell(v)]);
  return table(["NAME", "SECRET", "VALUE"], rows, { headerStyle: (h) => paint("bold", h, color) });
}

/**
 * `KEY=VALUE ...` as names and values, every one checked before anything is sent, so that a
 * mistyped last one does not leave the first ones set.
 */
export function assignments(args: readonly string[]): { name: string; value: string }[] {
  const seen = new Set<string>();
  return args.map((arg) => {
    const at = arg.indexOf("=");
    if (at < 0) throw new CliError(`${arg}: give KEY=VALUE (or KEY alone with --value-stdin, the value piped in)`);
    const name = arg.slice(0, at);
    const checked = VariableName.safeParse(name);
    if (!checked.success) throw new CliError(`${name || "(empty)"} ${checked.error.issues[0]?.message ?? "is not a variable name"}`);
    if (seen.has(name)) throw new CliError(`${name} is given twice`);
    seen.add(name);
    return { name, value: arg.slice(at + 1) };
  });
}

/** `hoist env vars list|set|rm`: the values an environment's compose files take, and its secrets. */
export function registerVariables(envCommand: Command, ctx: CliContext): void {
  const { out } = ctx;
  const command = envCommand.command("vars").description("an environment's variables and secrets (kept on the server; secrets are write-only)");

  command
    .command("list")
    .description("list an environment's variables (never a secret's value)")
    .argument("<env>", "environment name")
    .option("--json", "print them as JSON")
    .action(async (env: string, opts: { json?: boolean }) => {
      const variables = await ctx.client().listVariables(env);
      out.print(opts.json ? JSON.stringify(variables, null, 2) : variablesTable(env, variables, out.color));
    });

  command
    .command("set")
    .description("set or replace variables")
    .argument("<env>", "environment name")
    .argument("<assignments...>", "KEY=VALUE, one or more; or KEY alone with --value-stdin")
    .option("--secret", "write-only: never shown, reaches containers only as a file through compose `secrets:`")
    .option("--value-stdin", "read the one KEY's value from standard input (keeps it out of shell history)")
    .action(async (env: string, args: string[], opts: { secret?: boolean; valueStdin?: boolean }) => {
      const secret = opts.secret === true;
      let sets: { name: string; value: string }[];
      if (opts.valueStdin) {
        const [name, ...more] = args;
        if (name === undefined || more.length > 0 || name.includes("=")) throw new CliError("--value-stdin sets one variable: give its KEY alone and pipe the value in");
        assignments([`${name}=`]); // the name is checked before anything is read
        const value = await readStdinValue({ flag: "--value-stdin", what: "the value", example: `cat value | hoist env vars set ${env} ${name} --secret --value-stdin`, maxBytes: MAX_VALUE_BYTES });
        sets = [{ name, value }];
      } else sets = assignments(args);
      const client = ctx.client();
      const done: Variable[] = [];
      for (const { name, value } of sets) done.push(await client.putVariable(env, name, { value, secret }));
      out.print(variablesTable(env, done, out.color));
    });

  command
    .command("rm")
    .description("remove a variable")
    .argument("<env>", "environment name")
    .argument("<name>", "variable name")
    .action(async (env: string, name: string) => {
      await ctx.client().deleteVariable(env, name);
      out.print(`variable ${name} removed from ${env}`);
    });
}
