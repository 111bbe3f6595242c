import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { ulid } from "ulid";
import * as z from "zod";
import type { Clock } from "../clock.ts";
import { NotFoundError } from "../errors.ts";
import { quoted, RunId } from "../pipeline/names.ts";
import type { RepoRef } from "../pipeline/refs.ts";
import type { Queue } from "../queue/port.ts";
import { decide } from "../runs/approve.ts";
import { manualRunId } from "../runs/ids.ts";
import type { RunObserver } from "../runs/observer.ts";
import { rerunRun } from "../runs/rerun.ts";
import { startPipelineRun, type StartDeps } from "../runs/start-run.ts";
import type { RunStore } from "../store/port.ts";
import { parse } from "./app.ts";

export interface RunActionOptions {
  store: RunStore;
  queue: Pick<Queue, "send">;
  clock: Clock;
  observer?: RunObserver;
  /** For manual runs: reads `.hoist.yml` and the commit a ref names; unset, POST .../runs answers 503. */
  trigger?: StartDeps & { resolveRef: (repo: RepoRef, ref: string) => Promise<{ sha: string; branch?: string; tag?: string } | undefined> };
}

const who = z.string().trim().min(1).max(200);

const ApproveBody = z
  .object({
    /** Who decides: the API's token is shared, so the caller names the person (the CLI sends the user's name). */
    by: who,
    reject: z.boolean().default(false),
    reason: z.string().max(500).optional(),
    stage: z.number().int().min(0).optional(),
    via: z.enum(["api", "cli"]).default("api"),
  })
  .strict();

const RerunBody = z.object({ by: who, from: z.union([z.number().int().min(0), z.string().min(1).max(100)]).optional() }).strict();

/** Parameters of a manual run: few, short, and named as environment variables are. */
const Params = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "parameter names are letters, digits and _, not starting with a digit"), z.string().max(1024))
  .refine((p) => Object.keys(p).length <= 16, "at most 16 parameters");

const TriggerBody = z
  .object({
    by: who,
    /** A branch, a tag, or a commit sha. */
    ref: z.string().min(1).max(255),
    params: Params.default({}),
  })
  .strict();

const RepoParam = z.string().max(300).regex(/^(github|gitlab):[^\s]+\/[^\s]+$/, "is provider:full/name, e.g. github:acme/shop");
const PipelineParam = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "is a pipeline name of .hoist.yml");

/** POST /api/runs/:id/approve, /api/runs/:id/rerun, /api/pipelines/:repo/:pipeline/runs: what people do to runs. */
export function runActionRoutes(opts: RunActionOptions): Hono {
  const app = new Hono();
  const runId = (id: string) => {
    if (!RunId.safeParse(id).success) throw new HTTPException(404, { message: `no run ${quoted(id)}: list runs with GET /api/runs` });
    return id;
  };

  app.post("/api/runs/:id/approve", async (c) => {
    const id = runId(c.req.param("id"));
    const body = parse(ApproveBody, await c.req.json().catch(() => undefined), "body");
    const result = await decide(opts, { runId: id, approve: !body.reject, by: body.by, via: body.via, ...(body.reason ? { reason: body.reason } : {}), ...(body.stage !== undefined ? { stage: body.stage } : {}) });
    switch (result.outcome) {
      case "missing":
        throw new HTTPException(404, { message: `no run ${id}: list runs with GET /api/runs` });
      case "not-waiting":
        return c.json({ error: result.reason }, 409);
      case "refused":
        return c.json({ error: `refused: ${result.reason}`, stage: result.stage }, 403);
      default:
        return c.json(result, 200);
    }
  });

  app.post("/api/runs/:id/rerun", async (c) => {
    const id = runId(c.req.param("id"));
    const body = parse(RerunBody, await c.req.json().catch(() => undefined), "body");
    const run = await rerunRun(opts, id, body.by, body.from);
    if (!run) throw new HTTPException(404, { message: `no run ${id}: list runs with GET /api/runs` });
    return c.json(run, 202);
  });

  app.post("/api/pipelines/:repo/:pipeline/runs", async (c) => {
    const trigger = opts.trigger;
    if (!trigger) throw new HTTPException(503, { message: "this server cannot start runs by hand: it has no repository reader" });
    const repoKey = parse(RepoParam, c.req.param("repo"), "repo");
    const pipeline = parse(PipelineParam, c.req.param("pipeline"), "pipeline");
    const body = parse(TriggerBody, await c.req.json().catch(() => undefined), "body");
    // The repository as its pushes described it (clone URL, GitLab's project id): a repository
    // Hoist has never heard from is not one it may start runs of.
    const repo = (await opts.store.listRuns({ repo: repoKey, limit: 1 })).runs[0]?.repo;
    if (!repo) throw new NotFoundError(`no run of ${repoKey} yet: Hoist starts runs by hand only for repositories whose pushes it has had`);
    const head = await trigger.resolveRef(repo, body.ref);
    if (!head) throw new NotFoundError(`${repoKey} has no branch, tag or commit "${quoted(body.ref)}"`);
    const ref = head.branch !== undefined ? `refs/heads/${head.branch}` : head.tag !== undefined ? `refs/tags/${head.tag}` : head.sha;
    const { run, created } = await startPipelineRun({ ...trigger, ...(opts.observer ? { observer: opts.observer } : {}) }, {
      id: manualRunId(repoKey, pipeline, c.req.header("idempotency-key") ?? ulid()),
      repo,
      ref,
      ...(head.branch !== undefined ? { branch: head.branch } : {}),
      ...(head.tag !== undefined ? { tag: head.tag } : {}),
      sha: head.sha,
      pipeline,
      trigger: { type: "manual", actor: body.by, ...(Object.keys(body.params).length ? { params: body.params } : {}) },
    });
    return c.json(run, created ? 201 : 200);
  });
  return app;
}
