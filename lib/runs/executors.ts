import type { Clock } from "../clock.ts";
import type { Engine, JobState } from "../engine/port.ts";
import { NotFoundError, RetryableError } from "../errors.ts";
import { parseImageRef, repositoryOf } from "../pipeline/image-ref.ts";
import type { RegistryAccess } from "../registry/access.ts";
import { registryHostOf } from "../registry/host.ts";
import type { RunEvent } from "../pipeline/machine.ts";
import { imageTag } from "../pipeline/machine.ts";
import { builtImages } from "../pipeline/run-images.ts";
import type { Run, StageSpec } from "../pipeline/run.ts";
import type { SourceReader } from "../scm/port.ts";
import { readBuilds } from "../compose/builds.ts";
import { buildScript, shellWord, type BuildStep } from "./build-script.ts";
import { readComposeInputs } from "./compose-inputs.ts";
import { deployStage, stopDeploy, type DeployDeps } from "./deploy.ts";
import type { LogSink } from "./logs.ts";

export interface ExecutorDeps {
  engine: Engine;
  source: SourceReader;
  clock: Clock;
  builderImage: string;
  /** Logins for pushes, and the registry's own word on what a push left there. */
  registry: RegistryAccess;
  /** Environments and releases, for deploy stages. */
  releases?: DeployDeps;
}

/**
 * What one slice of work on a stage came to: a result, or "still going, look again" (at
 * `recheckAt` when the stage knows it has nothing to do before then: a canary interval).
 * `remove` names a finished job container to delete once the result is recorded: deleting
 * it before would let a re-driven worker run the job again.
 */
export type Outcome = { done: RunEvent; remove?: string } | { pending: true; recheckAt?: number };

export interface StageContext {
  run: Run;
  stage: number;
  job: string;
  /** The stage was started by this very call: no earlier job of it can exist yet. */
  fresh: boolean;
  /** Milliseconds this call may wait on a job before handing back "pending". */
  sliceMs: number;
  logs: LogSink;
  /** Why the run was stopped since this call read it, if it was (a fresh read). */
  stopped?: () => Promise<string | undefined>;
}

type Executors = { [K in StageSpec["kind"]]: (deps: ExecutorDeps, ctx: StageContext, spec: Extract<StageSpec, { kind: K }>) => Promise<Outcome> };

/** Carries out (or re-attaches to) a started stage; exhaustive over stage kinds. */
export function runStage(deps: ExecutorDeps, ctx: StageContext, spec: StageSpec): Promise<Outcome> {
  const executor = executors[spec.kind] as (d: ExecutorDeps, c: StageContext, s: StageSpec) => Promise<Outcome>;
  return executor(deps, ctx, spec);
}

const executors: Executors = {
  async build(deps, ctx, spec) {
    // What to build is read from the repository when it is needed (a look at a running build needs none).
    let planned: Awaited<ReturnType<typeof buildPlan>> | undefined;
    const plan = async () => (planned ??= await buildPlan(deps, ctx.run, spec));
    const output = (p: BuildPlan) => ({ image: p.steps[0]!.tag, ...(p.images ? { images: p.images } : {}) });
    // A stage just started skips the look for an earlier job: the images are checked, and the
    // job's lock (below) still finds a build of this sha that another run has under way.
    let state: JobState = ctx.fresh ? { state: "missing" } : await deps.engine.inspectJob(ctx.job);
    // Paths are relative: the builder runs in the directory holding the commit's files.
    const build = async (p: BuildPlan) =>
      deps.engine.ensureJob({
        name: ctx.job,
        image: deps.builderImage,
        agent: true,
        cmd: ["sh", "-c", [...p.warnings.map((w) => `echo ${shellWord(`warning: ${w}`)}`), buildScript(p.steps)].join("\n")],
        files: () => deps.source.archive(ctx.run.repo, ctx.run.sha),
        labels: { "hoist.run": ctx.run.id, "hoist.kind": "build", "hoist.image": output(p).image },
      });
    if (state.state === "missing" || state.state === "created") {
      const p = await plan();
      if ("error" in p) return finish(deps, ctx, false, { error: p.error });
      if (state.state === "missing" && (await allExist(deps.engine, p.steps.map((s) => s.tag)))) {
        ctx.logs.write(`${p.steps.map((s) => s.tag).join(", ")} already ${p.steps.length > 1 ? "exist" : "exists"}: not rebuilt (build once, deploy everywhere)\n`);
        return finish(deps, ctx, true, { output: { ...output(p), cached: true } });
      }
      state = await build(p);
    }
    state = await waitOnJob(deps, ctx, state);
    // A failed build left behind by an earlier run is not this run's result: build afresh.
    const startedAt = ctx.run.stages[ctx.stage]?.startedAt ?? 0;
    if (state.state === "exited" && state.exitCode !== 0 && state.finishedAt < startedAt) {
      const p = await plan();
      if ("error" in p) return finish(deps, ctx, false, { error: p.error });
      await deps.engine.removeJob(ctx.job);
      await build(p);
      return { pending: true };
    }
    if (state.state !== "exited") return { pending: true };
    if (state.exitCode !== 0) return finish(deps, ctx, false, { error: `docker build exited with ${state.exitCode}: see the stage log`, output: { exitCode: state.exitCode } });
    const p = await plan();
    if ("error" in p) return finish(deps, ctx, false, { error: p.error });
    return { ...finish(deps, ctx, true, { output: output(p) }), remove: ctx.job };
  },

  async test(deps, ctx, spec) {
    const image = ctx.run.image ?? "";
    const state0 = await deps.engine.ensureJob({
      name: ctx.job,
      image,
      entrypoint: ["/bin/sh", "-c"],
      cmd: [spec.run],
      env: spec.env,
      labels: { "hoist.run": ctx.run.id, "hoist.kind": "test" },
    });
    const state = await waitOnJob(deps, ctx, state0, spec.timeoutSec * 1000);
    if (state.state !== "exited") {
      const started = state.state === "running" ? state.startedAt : deps.clock.now();
      if (deps.clock.now() - started < spec.timeoutSec * 1000) return { pending: true };
      await deps.engine.removeJob(ctx.job);
      ctx.logs.write(`\nhoist: test timed out after ${spec.timeoutSec}s and was stopped\n`);
      return finish(deps, ctx, false, { error: `timed out after ${spec.timeoutSec}s` });
    }
    const ok = state.exitCode === 0;
    const details = { output: { exitCode: state.exitCode }, ...(ok ? {} : { error: `\`${spec.run}\` exited with ${state.exitCode}` }) };
    return { ...finish(deps, ctx, ok, details), remove: ctx.job };
  },

  async push(deps, ctx, spec) {
    const main = ctx.run.image ?? "";
    const built = builtImages(ctx.run);
    // Each image once, the run's own first: the stage's target, unless a compose build named each.
    const sources = [...new Set([main, ...Object.values(built ?? {})])];
    const pushed = new Map<string, { target: string; digest: string }>();
    for (const source of sources) {
      const target = built ? pushTarget(source, spec.registry) : imageTag(spec.target, ctx.run.sha);
      if (target === undefined) return finish(deps, ctx, false, { error: `push: image "${source}" names no registry; set push.registry or HOIST_REGISTRY on the server` });
      pushed.set(source, { target, digest: await pushOne(deps, ctx, source, target) });
    }
    const first = pushed.get(main)!;
    const images = built && Object.fromEntries(Object.entries(built).map(([service, source]) => {
      const p = pushed.get(source)!;
      return [service, `${repositoryOf(parseImageRef(p.target))}@${p.digest}`];
    }));
    return finish(deps, ctx, true, { output: { image: first.target, digest: first.digest, ...(images ? { images } : {}) } });
  },

  async deploy(deps, ctx, spec) {
    if (!deps.releases) return finish(deps, ctx, false, { error: "this server has no release store configured" });
    const result = await deployStage(deps.releases, ctx.run, ctx.stage, spec, { log: lineTo(ctx.logs), parkAfterMs: ctx.sliceMs, ...(ctx.stopped ? { stopped: ctx.stopped } : {}) });
    if ("waiting" in result && result.until !== undefined) {
      ctx.logs.write(`${result.waiting}\n`);
      return { pending: true, recheckAt: result.until };
    }
    if ("waiting" in result) {
      ctx.logs.write(`${result.waiting}\n`);
      await new Promise((r) => setTimeout(r, ctx.sliceMs));
      return { pending: true };
    }
    if (!result.ok) return finish(deps, ctx, false, { error: result.error, ...(result.release ? { output: { release: result.release } } : {}) });
    // The digest its instances run, read from the engine: not the run's, copied.
    return finish(deps, ctx, true, { output: { image: result.image, release: result.release, ...(result.digest ? { digest: result.digest } : {}) } });
  },
};

/**
 * Undoes what a stop caught in flight on a stage, then gives the stage's end to record (it
 * comes after the stop, so the run stays as the stop left it). A build is left to finish: other
 * runs of the same sha share it, and its image is reused.
 */
export async function stopStage(deps: ExecutorDeps, ctx: StageContext, spec: StageSpec): Promise<{ done: RunEvent }> {
  let undone: string;
  if (spec.kind === "deploy") {
    undone = deps.releases ? await stopDeploy(deps.releases, ctx.run, ctx.stage, spec, lineTo(ctx.logs)) : "nothing to undo";
  } else if (spec.kind === "build") {
    undone = "the build is left to finish for other runs of this commit";
  } else {
    await deps.engine.removeJob(ctx.job);
    undone = `job ${ctx.job} removed`;
  }
  ctx.logs.write(`\nhoist: ${ctx.run.stopped?.reason ?? "stopped"}: ${undone}\n`);
  return finish(deps, ctx, false, { error: `stopped: ${undone}` });
}

/** A release's log lines, into the stage's log (stored as the sink stores, flushed at the stage's end). */
const lineTo =
  (logs: LogSink) =>
  (line: string): void =>
    logs.write(`${line}\n`);

type FinishDetails = Pick<Extract<RunEvent, { type: "stageFinished" }>, "error" | "output">;

/** The stage's result, timed now. */
function finish(deps: ExecutorDeps, ctx: StageContext, ok: boolean, details: FinishDetails = {}): { done: RunEvent } {
  return { done: { type: "stageFinished", stage: ctx.stage, at: deps.clock.now(), ok, ...details } };
}

/**
 * Waits on a job for at most the slice (and the stage's own deadline), then copies its
 * output to the step log, so the user sees progress while it runs.
 */
async function waitOnJob(deps: ExecutorDeps, ctx: StageContext, state: JobState, deadlineMs = Infinity): Promise<JobState> {
  const stageEnd = (state.state === "running" ? state.startedAt : deps.clock.now()) + deadlineMs;
  const wait = Math.min(ctx.sliceMs, stageEnd - deps.clock.now());
  if (state.state !== "exited" && wait > 0) state = await deps.engine.waitJob(ctx.job, wait);
  ctx.logs.replace(await deps.engine.jobLogs(ctx.job));
  return state;
}

/** Pushes `source` as `target` and gives the digest the registry itself reports for it. */
async function pushOne(deps: ExecutorDeps, ctx: StageContext, source: string, target: string): Promise<string> {
  ctx.logs.write(`pushing ${source} as ${target}\n`);
  const auth = await deps.registry.login(registryHostOf(target));
  const pushed = await deps.engine.push(source, target, {
    auth,
    onProgress: lineTo(ctx.logs),
  });
  // What deploys get is confirmed by the registry itself, by digest (the tag may be moved
  // by another push meanwhile): the push's own report is only what the engine said it sent.
  const byDigest = `${repositoryOf(parseImageRef(target))}@${pushed.digest}`;
  const digest = await deps.registry.digest(byDigest, auth).catch((err: unknown) => {
    // Just pushed, so a registry that does not show it yet is behind, not missing it.
    throw err instanceof NotFoundError ? new RetryableError(`the registry does not show ${byDigest} yet: trying again`, { cause: err }) : err;
  });
  ctx.logs.write(`pushed ${repositoryOf(parseImageRef(target))}@${digest}\n`);
  return digest;
}

/** Where a compose build's other images go: the stage's registry, else the one they name. */
function pushTarget(source: string, registry: string | undefined): string | undefined {
  const ref = parseImageRef(source);
  if (registry) return `${registry}/${ref.path}:${ref.tag ?? "latest"}`;
  return ref.host !== undefined ? source : undefined;
}

async function allExist(engine: Engine, tags: readonly string[]): Promise<boolean> {
  for (const tag of tags) if (!(await engine.imageExists(tag))) return false;
  return true;
}

/**
 * The builds a stage makes: its one Dockerfile, or each service's `build:` section of its
 * compose files (read at the run's sha), with the stage's args over theirs.
 */
interface BuildPlan {
  steps: BuildStep[];
  /** A compose build's images by service. */
  images?: Record<string, string>;
  warnings: string[];
}

async function buildPlan(deps: ExecutorDeps, run: Run, spec: Extract<StageSpec, { kind: "build" }>): Promise<BuildPlan | { error: string }> {
  if (spec.compose === undefined) {
    const context = spec.context.replace(/\/+$/, "") || ".";
    return { steps: [{ label: spec.image, tag: imageTag(spec.image, run.sha), context, dockerfile: `${context}/${spec.dockerfile}`, args: spec.args }], warnings: [] };
  }
  const inputs = await readComposeInputs(deps.source, run, spec.compose, spec.overrides);
  if ("error" in inputs) return inputs;
  const read = await readBuilds(inputs.text, { file: spec.compose, prefix: spec.image, variables: inputs.dotEnv, overrides: inputs.overrides, readFile: inputs.readFile, services: spec.services });
  if (!read.ok) return { error: read.error };
  const steps = read.builds.map((b) => ({ ...b, label: b.services.join(", "), tag: imageTag(b.image, run.sha), args: { ...b.args, ...spec.args } }));
  const images = Object.fromEntries(read.builds.flatMap((b, i) => b.services.map((service) => [service, steps[i]!.tag])));
  return { steps, images, warnings: read.warnings };
}
