import { deployedImage, deployedImages } from "../pipeline/run-images.ts";
import { readApp } from "../compose/app.ts";
import { gateState } from "../pipeline/approval.ts";
import { protectionDenies, type Environment, type EnvironmentStore } from "../release/environment.ts";
import type { ReleaseContext } from "../release/ports.ts";
import type { ReleaseStore } from "../release/records.ts";
import { abandon, release, ReleaseBusyError } from "../release/release.ts";
import type { Run, StageSpec } from "../pipeline/run.ts";
import type { SourceReader } from "../scm/port.ts";
import type { VariableStore } from "../release/variables.ts";
import { readComposeInputs } from "./compose-inputs.ts";

export interface DeployDeps {
  store: ReleaseStore & EnvironmentStore;
  source: SourceReader;
  now: () => number;
  leaseMs: number;
  contextFor: (env: Environment, log: (line: string) => void) => ReleaseContext;
  /** The environments' own variables (`hoist env vars`); none without it. */
  variables?: Pick<VariableStore, "variableValues">;
}

export type DeployResult =
  | { ok: true; release: string; image: string; /** What its instances run, as the engine reported it. */ digest?: string }
  | { ok: false; error: string; release?: string }
  | { waiting: string; until?: number };

/**
 * The deploy stage: releases the run's image (the pushed one when the pipeline pushed, so
 * every environment gets the same digest) to a registered environment. The release id is
 * derived from the run and stage, so a worker that takes over after a crash resumes the
 * same release instead of starting a second one.
 */
export async function deployStage(
  deps: DeployDeps,
  run: Run,
  stage: number,
  spec: Extract<StageSpec, { kind: "deploy" }>,
  how: {
    log: (line: string) => void;
    /** Waits longer than this (canary intervals) park the release until a later call. */
    parkAfterMs?: number;
    /** Why the run was stopped since, if it was: the release stops at its next safe point. */
    stopped?: () => Promise<string | undefined>;
  },
): Promise<DeployResult> {
  const { log, parkAfterMs, stopped } = how;
  const env = await deps.store.getEnvironment(spec.environment);
  if (!env) {
    const known = (await deps.store.listEnvironments()).map((e) => e.name);
    return { ok: false, error: `unknown environment "${spec.environment}" (registered: ${known.join(", ") || "none"}): register it with \`hoist env set\`` };
  }
  const denied = protectionDenies(env, run);
  if (denied) return { ok: false, error: denied };
  // The gate opened before this look at the environment; a rule added since fails closed.
  if (env.protection.approval?.required && gateState(run.stages[stage]?.gate) !== "approved")
    return { ok: false, error: `environment ${env.name} requires an approval for each release, and this stage was not approved: re-run it (\`hoist rerun ${run.id} --from ${run.stages[stage]?.name}\`) to ask for one` };
  const inputs = await readComposeInputs(deps.source, run, spec.compose, spec.overrides);
  if ("error" in inputs) return { ok: false, error: inputs.error };
  // The environment's variables over the repository's .env; secret ones only as secrets' files.
  const server = deps.variables ? await deps.variables.variableValues(env.name) : [];
  const plain = Object.fromEntries(server.filter((v) => !v.secret).map((v) => [v.name, v.value]));
  const image = deployedImage(run);
  const services = deployedImages(run);
  const parsed = await readApp(inputs.text, {
    file: spec.compose,
    overrides: inputs.overrides,
    variables: { ...inputs.dotEnv, ...plain },
    serverVariables: Object.fromEntries(server.map((v) => [v.name, { version: v.version, secret: v.secret }])),
    routed: spec.service,
    only: spec.services,
    profiles: spec.profiles,
    allow: env.allow,
    readFile: inputs.readFile,
    // Services with `build:` run what this run built (and pushed).
    ...(image ? { built: { image, ...(services ? { services } : {}) } } : {}),
  });
  if (!parsed.ok) return { ok: false, error: parsed.error };
  for (const warning of parsed.warnings) log(`warning: ${warning}`);
  if (!image) return { ok: false, error: "no image to deploy: the run built nothing" };
  const read = parsed.spec;
  const releaseSpec = spec.strategy ? { ...read, hoist: { ...read.hoist, strategy: spec.strategy } } : read;

  const id = releaseId(run, stage);
  const earlier = await deps.store.getRelease(env.name, id);
  if (earlier && earlier.status !== "running")
    return earlier.status === "succeeded" ? { ok: true, release: id, image: parsed.image, ...(earlier.digest ? { digest: earlier.digest } : {}) } : { ok: false, error: earlier.error ?? "release failed", release: id };
  try {
    const done = await release(
      { store: deps.store, now: deps.now, leaseMs: deps.leaseMs },
      { ...deps.contextFor(env, log), ...(stopped ? { stopped } : {}) },
      {
        id,
        image: parsed.image,
        spec: releaseSpec,
        trigger: { type: "run", by: run.trigger.type === "push" ? (run.trigger.actor ?? "push") : run.trigger.type, runId: run.id },
        ...(parkAfterMs !== undefined ? { parkAfterMs } : {}),
      },
    );
    const wake = done.checkpoint;
    if (done.status === "running" && wake) return { waiting: `${wake.waiting}: next look at ${new Date(wake.until).toISOString()}`, until: wake.until };
    return done.status === "succeeded" ? { ok: true, release: id, image: parsed.image, ...(done.digest ? { digest: done.digest } : {}) } : { ok: false, error: done.error ?? "release failed", release: id };
  } catch (err) {
    if (err instanceof ReleaseBusyError) return { waiting: err.message };
    throw err;
  }
}

/**
 * Undoes a deploy stage that a cancel caught in flight: its release, if it is still under way,
 * is withdrawn (see `abandon`). Says what became of it.
 */
export async function stopDeploy(deps: DeployDeps, run: Run, stage: number, spec: Extract<StageSpec, { kind: "deploy" }>, log: (line: string) => void): Promise<string> {
  const env = await deps.store.getEnvironment(spec.environment);
  if (!env) return "no release was under way";
  const id = releaseId(run, stage);
  const reason = run.stopped?.reason ?? "stopped";
  const record = await abandon({ store: deps.store, now: deps.now, leaseMs: deps.leaseMs }, deps.contextFor(env, log), id, reason);
  if (!record) return "no release was under way";
  return record.status === "cancelled" ? `release ${id} cancelled: ${record.error ?? ""}` : `release ${id} had already ended ${record.status}`;
}

/** Sorts in time like the ULIDs of manual releases, and is the same on every retry. */
function releaseId(run: Run, stage: number): string {
  const startedAt = run.stages[stage]?.startedAt ?? run.createdAt;
  return `${startedAt.toString(36).padStart(10, "0")}-${run.id.slice(-8)}-${stage}`;
}
