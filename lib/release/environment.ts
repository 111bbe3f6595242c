import picomatch from "picomatch";
import { parse as parseYaml } from "yaml";
import * as z from "zod";
import { address, EngineAccess } from "../engine/access.ts";
import { ApprovalAsk } from "../pipeline/approval.ts";
import { EnvironmentName } from "../pipeline/names.ts";

/**
 * An environment as an operator registers it (API, CLI, or the local runtime's file). It
 * lives on the server: a repository's `.hoist.yml` names an environment but cannot change
 * where it runs or weaken its protection rules.
 */

const routerAddress = address(/^(unix:\/\/\/\S+|tcp:\/\/\S+:\d+)$/, "is the HAProxy runtime API: unix:///path/admin.sock or tcp://host:port");

export const Environment = z
  .object({
    name: EnvironmentName,
    engine: EngineAccess,
    mode: z.enum(["docker", "swarm"]).default("docker"),
    // No `registry`: the engine pulls an image with the login registered for its registry's
    // host (lib/registry), whichever environment releases it.
    router: z
      .object({
        admin: routerAddress,
        backend: z.string().regex(/^[A-Za-z0-9_.:-]+$/, "is an HAProxy backend name"),
        /**
         * The routes map of a router several environments share: the file (as HAProxy names it)
         * its frontend looks the backend up in by host and path. An app's `x-hoist.routes` go there.
         */
        map: z.string().regex(/^\/\S+$/, "is the absolute path of the map file HAProxy's frontend reads").optional(),
      })
      .strict(),
    protection: z
      .object({
        /** Repositories allowed to release here, `provider:owner/name` globs; unset: any repository. */
        repos: z
          .array(z.string().regex(/^(github|gitlab):\S+$/, "is provider:owner/name, a glob, e.g. github:acme/shop or gitlab:team/*"))
          .min(1)
          .optional(),
        /** Branch globs allowed to release here; unset: any branch. */
        branches: z.array(z.string().min(1)).min(1).optional(),
        /**
         * Every run's release here waits for approvals, whatever its `.hoist.yml` says: `count` distinct
         * people of `approvers` (none named: anyone who can decide), within `timeoutSec`, the pusher
         * among them only with `selfApproval`.
         */
        approval: ApprovalAsk.extend({ required: z.boolean() }).strict().optional(),
      })
      .strict()
      .default({}),
    /**
     * What a repository's compose file may reach on the engine's host: bind mounts of host paths,
     * devices and external volumes (`hostPaths`); privileged containers and added capabilities
     * (`privileged`). Both off unless the operator turns them on.
     */
    allow: z.object({ hostPaths: z.boolean().default(false), privileged: z.boolean().default(false) }).strict().default({ hostPaths: false, privileged: false }),
  })
  .strict();
export type Environment = z.output<typeof Environment>;

export interface EnvironmentStore {
  putEnvironment(env: Environment): Promise<void>;
  getEnvironment(name: string): Promise<Environment | undefined>;
  listEnvironments(): Promise<Environment[]>;
}

/** Why a run of `repo` on `branch` may not release to `env`, or undefined when it may. */
export function protectionDenies(env: Environment, run: { repo: { provider: string; fullName: string }; branch?: string | undefined }): string | undefined {
  const { branch } = run;
  const repo = `${run.repo.provider}:${run.repo.fullName}`;
  const repos = env.protection.repos;
  if (repos && !picomatch.isMatch(repo, repos)) return `environment ${env.name} accepts releases only from ${repos.join(", ")}; this run is of ${repo}`;
  const allowed = env.protection.branches;
  if (!allowed) return undefined;
  if (branch !== undefined && picomatch.isMatch(branch, allowed, { dot: true })) return undefined;
  return `environment ${env.name} accepts releases only from ${allowed.join(", ")}; this run is on ${branch ?? "a tag"}`;
}

const EnvironmentsFile = z.object({ environments: z.array(Environment).min(1) }).strict();

/** The local runtime's environments file (HOIST_ENVIRONMENTS_FILE): `environments: [ ... ]`. */
export function parseEnvironmentsFile(text: string, file: string): Environment[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new Error(`${file}: invalid YAML: ${(err as Error).message}`, { cause: err });
  }
  const parsed = EnvironmentsFile.safeParse(doc);
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data.environments;
}
