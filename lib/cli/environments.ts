import { Option, type Command } from "commander";
import { parseDuration } from "../duration.ts";
import type { CliContext } from "./context.ts";
import { environmentsTable, releasesTable } from "./format.ts";
import { CliError } from "./output.ts";
import { registerVariables } from "./variables.ts";

interface EnvSetOptions {
  engine: string;
  router: string;
  backend: string;
  mode: "docker" | "swarm";
  tls?: string;
  sshKey?: string;
  sshHostKey?: string;
  repos?: string;
  branches?: string;
  approval?: boolean;
  approvers?: string;
  approvals?: number;
  approvalTimeout?: string;
  selfApproval: boolean;
  routerMap?: string;
  allowHostPaths?: boolean;
  allowPrivileged?: boolean;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`expected a whole number of at least 1, got "${v}"`);
  return n;
}

/** A Go-style duration (30m, 24h, 1h30m) in whole seconds. */
function durationSec(v: string, flag: string): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms < 1000) throw new CliError(`${flag}: expected a duration such as 30m or 24h, got "${v}"`);
  return Math.round(ms / 1000);
}

const split = (v: string | undefined) => (v ?? "").split(",").map((x) => x.trim()).filter(Boolean);

/** `hoist env list|set|vars`, `releases` and `rollback`: where releases go and what went there. */
export function registerEnvironments(program: Command, ctx: CliContext): void {
  const { out } = ctx;
  const envCommand = program.command("env").description("environments releases go to (registered on the server)");

  envCommand
    .command("list")
    .description("list registered environments")
    .option("--json", "print them as JSON")
    .action(async (opts: { json?: boolean }) => {
      const envs = await ctx.client().listEnvironments();
      out.print(opts.json ? JSON.stringify(envs, null, 2) : environmentsTable(envs, out.color));
    });

  envCommand
    .command("set")
    .description("register or replace an environment")
    .argument("<name>", "environment name, e.g. staging")
    .requiredOption("--engine <endpoint>", "Docker engine: unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host")
    .requiredOption("--router <address>", "HAProxy runtime API: unix:///run/haproxy/admin.sock or tcp://host:port")
    .requiredOption("--backend <name>", "the HAProxy backend that serves this environment")
    .option("--router-map <file>", "the routes map of a HAProxy several environments share (its path as HAProxy reads it): x-hoist.routes go there")
    .addOption(new Option("--mode <mode>", "single Docker host or Swarm").choices(["docker", "swarm"]).default("docker"))
    .option("--tls <ca,cert,key>", "for tcp:// with TLS: paths (on the server) of the CA, client certificate and key, comma-separated")
    .option("--ssh-key <path>", "for ssh://: path (on the server) of the private key")
    .option("--ssh-host-key <fingerprint>", 'for ssh://: the engine host\'s key fingerprint, "SHA256:..." (ssh-keyscan HOST | ssh-keygen -lf -)')
    .option("--repos <globs>", "only these repositories may release here (comma-separated provider:owner/name globs, e.g. github:acme/*)")
    .option("--branches <globs>", "only these branches may release here (comma-separated globs)")
    .option("--approval", "releases here need an approval")
    .option("--approvers <names>", "who may approve (comma-separated: Slack ids as slack:U0123, emails, names)")
    .option("--approvals <count>", "distinct approvals each release needs (default 1)", positiveInt)
    .option("--approval-timeout <duration>", "how long a release waits for them before its run fails, e.g. 30m, 24h (default 24h)")
    .option("--no-self-approval", "whoever started the run may not approve it")
    .option("--allow-host-paths", "let compose files bind-mount host paths and devices, and mount external volumes")
    .option("--allow-privileged", "let compose files run privileged containers and add capabilities")
    .action(async (name: string, opts: EnvSetOptions) => {
      const [ca = "", cert = "", key = ""] = split(opts.tls);
      const env = await ctx.client().putEnvironment({
        name,
        engine: {
          endpoint: opts.engine,
          ...(opts.tls ? { tls: { ca, cert, key } } : {}),
          ...(opts.sshKey || opts.sshHostKey ? { ssh: { key: opts.sshKey ?? "", hostKey: opts.sshHostKey ?? "" } } : {}),
        },
        mode: opts.mode,
        router: { admin: opts.router, backend: opts.backend, ...(opts.routerMap ? { map: opts.routerMap } : {}) },
        protection: {
          ...(opts.repos ? { repos: split(opts.repos) } : {}),
          ...(opts.branches ? { branches: split(opts.branches) } : {}),
          ...(opts.approval || opts.approvers || opts.approvals || opts.approvalTimeout || !opts.selfApproval
            ? {
                approval: {
                  required: true,
                  approvers: split(opts.approvers),
                  ...(opts.approvals ? { count: opts.approvals } : {}),
                  ...(opts.approvalTimeout ? { timeoutSec: durationSec(opts.approvalTimeout, "--approval-timeout") } : {}),
                  selfApproval: opts.selfApproval,
                },
              }
            : {}),
        },
        allow: { hostPaths: opts.allowHostPaths === true, privileged: opts.allowPrivileged === true },
      });
      out.print(environmentsTable([env], out.color));
    });

  registerVariables(envCommand, ctx);

  program
    .command("releases")
    .description("an environment's release history, newest first")
    .argument("<env>", "environment name")
    .option("--json", "print the history as JSON")
    .action(async (env: string, opts: { json?: boolean }) => {
      const releases = await ctx.client().listReleases(env);
      out.print(opts.json ? JSON.stringify(releases, null, 2) : releasesTable(releases, { now: Date.now(), color: out.color }));
    });

  program
    .command("rollback")
    .description("redeploy an earlier release as a new release (default: the one before the current)")
    .argument("<env>", "environment name")
    .option("--to <release>", "the release to go back to (see `hoist releases ENV`)")
    .action(async (env: string, opts: { to?: string }) => {
      const client = ctx.client();
      const { release: queued } = await client.rollback(env, opts.to);
      out.print(out.paint("dim", `rolling ${env} back to ${queued.image} as release ${queued.id} (queued)...`));
      // The server queues the release; a worker runs it. Look at the history until it ends.
      let release = queued;
      while (release.status === "queued" || release.status === "running") {
        await new Promise((r) => setTimeout(r, 500));
        release = (await client.listReleases(env)).find((r) => r.id === queued.id) ?? release;
      }
      out.print(releasesTable([release], { now: Date.now(), color: out.color }));
      if (release.status !== "succeeded") throw new CliError(`rollback failed: ${release.error ?? `see \`hoist releases ${env}\``}`);
    });
}
