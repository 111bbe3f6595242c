import { parseImageRef } from "./image-ref.ts";
import type { StageSpec } from "./run.ts";
import { ApprovalAsk } from "./approval.ts";
import type { Pipeline, StageApproval } from "./schema.ts";
import { growthRoom, jsonBytes, RUN_BUDGET_BYTES, RUN_FIELDS_BYTES } from "./size.ts";

export interface ResolveContext {
  /** Repository full name; its last segment names the image when the build stage does not. */
  repoName: string;
  /** Default registry (HOIST_REGISTRY) for push stages that name none. */
  registry?: string;
}

export type Resolved = { ok: true; stages: { name: string; spec: StageSpec }[] } | { ok: false; error: string };

/**
 * Turns a pipeline's stage list into fully specified stages, naming each (`test`, `test-2`, ...).
 * Refuses stages that, with room for what their results add, would not fit a run record.
 */
export function resolveStages(pipeline: Pipeline, ctx: ResolveContext): Resolved {
  const seen = new Map<string, number>();
  const stages: { name: string; spec: StageSpec }[] = [];
  let image = "";
  for (const entry of pipeline.stages) {
    let spec: StageSpec;
    if ("build" in entry) {
      const b = entry.build;
      image = b.image ?? defaultImage(ctx.repoName);
      spec = {
        kind: "build",
        image,
        context: b.context ?? ".",
        dockerfile: b.dockerfile ?? "Dockerfile",
        args: b.args,
        ...(b.compose !== undefined ? composeFiles(b.compose) : {}),
        ...(b.services ? { services: b.services } : {}),
      };
    } else if ("test" in entry) {
      spec = { kind: "test", run: entry.test.run, timeoutSec: entry.test.timeout, env: entry.test.env };
    } else if ("deploy" in entry) {
      const d = entry.deploy;
      spec = {
        kind: "deploy",
        environment: d.environment,
        ...composeFiles(d.compose),
        ...(d.service ? { service: d.service } : {}),
        ...(d.services ? { services: d.services } : {}),
        ...(d.profiles ? { profiles: d.profiles } : {}),
        ...(d.strategy ? { strategy: d.strategy } : {}),
        ...(d.approval ? { approval: approvalAsk(d.approval) } : {}),
      };
    } else {
      const ref = parseImageRef(image);
      const registry = entry.push.registry ?? (ref.host !== undefined ? undefined : ctx.registry);
      if (!registry && ref.host === undefined)
        return { ok: false, error: `push: image "${image}" names no registry; set push.registry or HOIST_REGISTRY on the server` };
      spec = { kind: "push", target: registry ? `${registry}/${ref.path}${ref.tag !== undefined ? `:${ref.tag}` : ""}` : image, ...(registry ? { registry } : {}) };
    }
    const n = (seen.get(spec.kind) ?? 0) + 1;
    seen.set(spec.kind, n);
    stages.push({ name: n === 1 ? spec.kind : `${spec.kind}-${n}`, spec });
  }
  const composeBuild = stages.findIndex((s) => s.spec.kind === "build" && s.spec.compose !== undefined);
  const imageStages = composeBuild < 0 ? 0 : stages.filter((s, i) => i >= composeBuild && (s.spec.kind === "build" || s.spec.kind === "push")).length;
  const needed = jsonBytes(stages) + growthRoom(stages.length, imageStages, stages.filter((s) => s.spec.kind === "deploy").length);
  const budget = RUN_BUDGET_BYTES - RUN_FIELDS_BYTES;
  if (needed > budget)
    return {
      ok: false,
      error: `the pipeline's ${stages.length} stages need ${needed} bytes of the run record with room for their results, at most ${budget}: shorten test commands, env and build args (a long script belongs in a file of the repository)`,
    };
  return { ok: true, stages };
}

/** A deploy stage's `approval:` as the gate reads it. */
function approvalAsk(a: true | StageApproval): ApprovalAsk {
  return ApprovalAsk.parse(
    a === true ? {} : { approvers: a.approvers, count: a.count, timeoutSec: a.timeout, selfApproval: a.self_approval },
  );
}

/** A stage's `compose:`: the first file, and those merged over it. */
function composeFiles(files: string | string[]): { compose: string; overrides?: string[] } {
  const [compose, ...overrides] = typeof files === "string" ? [files] : files;
  return { compose: compose!, ...(overrides.length ? { overrides } : {}) };
}

function defaultImage(repoName: string): string {
  const last = repoName.split("/").at(-1) ?? "app";
  return last.toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+/, "") || "app";
}
