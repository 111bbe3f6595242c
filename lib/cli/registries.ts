import { Option, type Command } from "commander";
import type { Registry } from "../registry/registry.ts";
import type { CliContext } from "./context.ts";
import { paint, table } from "./format.ts";
import { CliError } from "./output.ts";
import { readStdinValue } from "./stdin.ts";

/** The server takes 8,192 characters at most, and a line ending: more is no password. */
const MAX_SECRET_BYTES = 8194;

const readSecret = () =>
  readStdinValue({ flag: "--password-stdin", what: "the password or token", example: "cat token | hoist registry set ...", maxBytes: MAX_SECRET_BYTES });

function registriesTable(registries: readonly Registry[], color: boolean): string {
  if (registries.length === 0) return "no registries: register one with `hoist registry set HOST --username U --password-stdin`";
  const rows = registries.map((r) => [r.host, r.auth === "ecr" ? `ecr (${r.ecr?.region ?? "?"})` : "basic", r.username ?? "-", new Date(r.updatedAt).toISOString()]);
  return table(["HOST", "AUTH", "USERNAME", "UPDATED"], rows, { headerStyle: (h) => paint("bold", h, color) });
}

/** `hoist registry list|set|rm`: the credentials push stages and environment engines use per registry host. */
export function registerRegistries(program: Command, ctx: CliContext): void {
  const { out } = ctx;
  const command = program.command("registry").description("registries images are pushed to and pulled from (credentials kept on the server)");

  command
    .command("list")
    .description("list registered registries (never their passwords)")
    .option("--json", "print them as JSON")
    .action(async (opts: { json?: boolean }) => {
      const registries = await ctx.client().listRegistries();
      out.print(opts.json ? JSON.stringify(registries, null, 2) : registriesTable(registries, out.color));
    });

  command
    .command("set")
    .description("register or replace a registry's credentials")
    .argument("<host>", "the registry as image names give it, e.g. ghcr.io or registry.example.com:5000")
    .option("--username <name>", "user to log in as")
    .option("--password-stdin", "read the password or token from standard input")
    .addOption(new Option("--ecr <region>", "an Amazon ECR registry: the server gets tokens with its own AWS credentials").conflicts(["username", "passwordStdin"]))
    .action(async (host: string, opts: { username?: string; passwordStdin?: boolean; ecr?: string }) => {
      let registration;
      if (opts.ecr) registration = { ecr: { region: opts.ecr } };
      else if (opts.username && opts.passwordStdin) registration = { username: opts.username, password: await readSecret() };
      else throw new CliError("give --username USER --password-stdin (the password piped in), or --ecr REGION");
      const registry = await ctx.client().putRegistry(host, registration);
      out.print(registriesTable([registry], out.color));
    });

  command
    .command("rm")
    .description("forget a registry's credentials")
    .argument("<host>", "registry host")
    .action(async (host: string) => {
      await ctx.client().deleteRegistry(host);
      out.print(`registry ${host} removed`);
    });
}
