import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { listenLocal } from "./listen.ts";

/**
 * A stand-in for the GitHub REST API and the GitLab v4 API, for the endpoints Hoist reports
 * through: it records every request (method, path, query, JSON body, token header) and answers
 * as the providers document, keeping what was created so that a later list or update sees it.
 *
 * GitHub (https://docs.github.com/rest): POST /repos/{o}/{r}/statuses/{sha} (201, the status,
 * shaped as @octokit/fixtures recorded it), POST /repos/{o}/{r}/deployments (201, the deployment;
 * 409 when `required_contexts` is left out and a status of the sha is not success, as GitHub's
 * check does), GET /repos/{o}/{r}/deployments?sha&environment&task (200, newest first), POST
 * /repos/{o}/{r}/deployments/{id}/statuses (201).
 *
 * GitLab (lib/api/commit_statuses.rb, lib/api/deployments.rb): POST /api/v4/projects/{id}/statuses/{sha}
 * (201; 400 "Cannot transition status via :enqueue from :pending" for a pending or running job posted
 * the same state again, as Ci::CreateCommitStatusService does), POST, PUT and GET
 * /api/v4/projects/{id}/deployments (201, 200, 200 newest first with order_by=id&sort=desc).
 *
 * `failNext` makes the next requests fail: a status (500 unless told), after doing what they ask
 * or not, or no answer at all.
 */

export interface RecordedRequest {
  method: string;
  /** Without the query, as sent (a GitLab project path stays URL-encoded). */
  path: string;
  query: Record<string, string>;
  body: unknown;
  /** GitHub's token header (octokit sends `token <token>`). */
  authorization: string | undefined;
  /** GitLab's token header. */
  privateToken: string | undefined;
  /** What the recorder answered; 0 when it did not. */
  status: number;
  /** When it came (Date.now()). */
  at: number;
}

export interface Fault {
  /** Default 500. */
  status?: number;
  headers?: Record<string, string>;
  /** Default `{"message": "Server Error"}`. */
  body?: unknown;
  /** Only requests this matches count (default: every request). */
  match?: (req: RecordedRequest) => boolean;
  /** Do what the request asks, then answer with the fault: an answer lost on the way back. */
  afterApplying?: boolean;
  /** Never answer (the connection stays open until the client gives up or the recorder closes). */
  hang?: boolean;
}

export interface ProviderRecorder {
  url: string;
  requests: RecordedRequest[];
  /** The next `n` requests (that `fault.match` matches) fail as `fault` says. */
  failNext(n: number, fault?: Fault): void;
  /** Forgets requests, faults and everything created. */
  reset(): void;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  body?: unknown;
}

const fixtures = createRequire(import.meta.url).resolve("@octokit/fixtures/package.json").replace(/package\.json$/, "");
const createStatus = JSON.parse(readFileSync(`${fixtures}scenarios/api.github.com/create-status/normalized-fixture.json`, "utf8")) as { response: Record<string, unknown> }[];
/** GitHub's answer to a created status, as recorded by @octokit/fixtures; its fields are replaced by the request's. */
const GITHUB_STATUS = createStatus[0]!.response;
const GITHUB_USER = GITHUB_STATUS.creator;
/** GitLab's documented user and commit status fields (doc/api/commits.md, doc/api/deployments.md). */
const GITLAB_USER = { id: 1, name: "Administrator", username: "root", state: "active", avatar_url: "http://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61?s=80&d=identicon", web_url: "http://gitlab.example.com/root" };
const NOW = "2016-08-11T11:32:35.444Z";

export async function startProviderRecorder(): Promise<ProviderRecorder> {
  const requests: RecordedRequest[] = [];
  let faults: { left: number; fault: Fault }[] = [];
  /** Ids are counted per kind, as the providers do: the first deployment is 1. */
  let ids = { status: 0, deployment: 0, deploymentStatus: 0 };
  let github = { statuses: [] as { repo: string; sha: string; context: string; state: string }[], deployments: [] as Record<string, unknown>[] };
  let gitlab = { jobs: [] as { project: string; sha: string; name: string; ref: string; status: string }[], deployments: [] as Record<string, unknown>[] };
  let base = "";

  const answerGitHub = (req: RecordedRequest): Answer | undefined => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const repoUrl = (repo: string) => `${base}/repos/${repo}`;
    let m = /^\/repos\/([^/]+\/[^/]+)\/statuses\/([0-9a-f]+)$/.exec(req.path);
    if (m && req.method === "POST") {
      const [, repo, sha] = m as unknown as [string, string, string];
      github.statuses.push({ repo, sha, context: String(body.context ?? "default"), state: String(body.state) });
      return { status: 201, body: { ...GITHUB_STATUS, id: ++ids.status, url: `${repoUrl(repo)}/statuses/${sha}`, state: body.state, description: body.description ?? null, target_url: body.target_url ?? null, context: body.context ?? "default" } };
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/deployments$/.exec(req.path);
    if (m && req.method === "POST") {
      const repo = m[1]!;
      const ref = String(body.ref);
      if (body.required_contexts === undefined) {
        const latest = new Map(github.statuses.filter((s) => s.repo === repo && s.sha === ref).map((s) => [s.context, s.state]));
        if ([...latest.values()].some((s) => s !== "success")) return { status: 409, body: { message: `Conflict: Commit status checks failed for ${ref}.`, documentation_url: "https://docs.github.com/rest/deployments/deployments#create-a-deployment" } };
      }
      const id = ++ids.deployment;
      const environment = String(body.environment ?? "production");
      const deployment = {
        url: `${repoUrl(repo)}/deployments/${id}`,
        id,
        node_id: `MDEwOkRlcGxveW1lbnQ${id}`,
        sha: ref,
        ref,
        task: body.task ?? "deploy",
        payload: body.payload ?? {},
        original_environment: environment,
        environment,
        description: body.description ?? null,
        creator: GITHUB_USER,
        created_at: NOW,
        updated_at: NOW,
        statuses_url: `${repoUrl(repo)}/deployments/${id}/statuses`,
        repository_url: repoUrl(repo),
        transient_environment: body.transient_environment ?? false,
        production_environment: body.production_environment ?? environment === "production",
      };
      github.deployments.unshift({ ...deployment, repo });
      return { status: 201, body: deployment };
    }
    if (m && req.method === "GET") {
      const { sha, environment, task, ref } = req.query;
      const listed = github.deployments.filter(
        (d) => d.repo === m![1] && (!sha || d.sha === sha) && (!ref || d.ref === ref) && (!environment || d.environment === environment) && (!task || d.task === task),
      );
      return { status: 200, body: listed.map(({ repo: _repo, ...d }) => d) };
    }
    m = /^\/repos\/([^/]+\/[^/]+)\/deployments\/(\d+)\/statuses$/.exec(req.path);
    if (m && req.method === "POST") {
      const deployment = github.deployments.find((d) => d.repo === m![1] && d.id === Number(m![2]));
      if (!deployment) return { status: 404, body: { message: "Not Found", documentation_url: "https://docs.github.com/rest/deployments/statuses#create-a-deployment-status" } };
      return {
        status: 201,
        body: {
          url: `${deployment.url}/statuses/${++ids.deploymentStatus}`,
          id: ids.deploymentStatus,
          node_id: `MDE2OkRlcGxveW1lbnRTdGF0dXM${ids.deploymentStatus}`,
          state: body.state,
          creator: GITHUB_USER,
          description: body.description ?? "",
          environment: deployment.environment,
          target_url: body.log_url ?? body.target_url ?? "",
          created_at: NOW,
          updated_at: NOW,
          deployment_url: deployment.url,
          repository_url: deployment.repository_url,
          environment_url: body.environment_url ?? "",
          log_url: body.log_url ?? body.target_url ?? "",
        },
      };
    }
    return undefined;
  };

  const gitlabDeployment = ({ project: _project, ...d }: Record<string, unknown>) => ({ ...d, user: GITLAB_USER, environment: { id: 9, name: d.environment, external_url: null }, deployable: null });

  const answerGitLab = (req: RecordedRequest): Answer | undefined => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    let m = /^\/api\/v4\/projects\/([^/]+)\/statuses\/([0-9a-f]+)$/.exec(req.path);
    if (m && req.method === "POST") {
      const [, project, sha] = m as unknown as [string, string, string];
      const state = String(body.state);
      if (!["pending", "running", "success", "failed", "canceled", "skipped"].includes(state)) return { status: 400, body: { error: "state does not have a valid value" } };
      const name = String(body.name ?? body.context ?? "default");
      const ref = String(body.ref ?? "main");
      // The job of that name still pending or running is moved on; a finished one is followed by a new job.
      const job = gitlab.jobs.find((j) => j.project === project && j.sha === sha && j.name === name && j.ref === ref && (j.status === "pending" || j.status === "running"));
      if (job && job.status === state) {
        const event = state === "pending" ? "enqueue" : "run";
        return { status: 400, body: { message: `Cannot transition status via :${event} from :${state} (Reason(s): Status cannot transition via "${event}")` } };
      }
      if (job) job.status = state;
      else gitlab.jobs.push({ project, sha, name, ref, status: state });
      return {
        status: 201,
        body: { id: ++ids.status, sha, ref, status: state, name, target_url: body.target_url ?? null, description: body.description ?? null, created_at: NOW, started_at: null, finished_at: null, allow_failure: false, coverage: null, author: GITLAB_USER },
      };
    }
    m = /^\/api\/v4\/projects\/([^/]+)\/deployments$/.exec(req.path);
    if (m && req.method === "POST") {
      for (const key of ["environment", "sha", "ref", "tag", "status"]) if (body[key] === undefined) return { status: 400, body: { error: `${key} is missing` } };
      if (!["running", "success", "failed", "canceled"].includes(String(body.status))) return { status: 400, body: { error: "status does not have a valid value" } };
      const deployment = { project: m[1], id: ++ids.deployment, iid: ids.deployment, ref: body.ref, sha: body.sha, status: body.status, environment: body.environment, created_at: NOW, updated_at: NOW };
      gitlab.deployments.unshift(deployment);
      return { status: 201, body: gitlabDeployment(deployment) };
    }
    if (m && req.method === "GET") {
      const listed = gitlab.deployments.filter((d) => d.project === m![1] && (!req.query.environment || d.environment === req.query.environment));
      if (req.query.order_by !== "id" || req.query.sort !== "desc") return { status: 400, body: { error: "the recorder only lists deployments newest first (order_by=id&sort=desc)" } };
      return { status: 200, body: listed.slice(0, Number(req.query.per_page ?? 20)).map(gitlabDeployment) };
    }
    m = /^\/api\/v4\/projects\/([^/]+)\/deployments\/(\d+)$/.exec(req.path);
    if (m && req.method === "PUT") {
      const deployment = gitlab.deployments.find((d) => d.project === m![1] && d.id === Number(m![2]));
      if (!deployment) return { status: 404, body: { message: "404 Not found" } };
      if (!["running", "success", "failed", "canceled"].includes(String(body.status))) return { status: 400, body: { error: "status does not have a valid value" } };
      deployment.status = body.status;
      return { status: 200, body: gitlabDeployment(deployment) };
    }
    return undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://recorder");
    const recorded: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: text ? (JSON.parse(text) as unknown) : undefined,
      authorization: req.headers.authorization,
      privateToken: req.headers["private-token"] as string | undefined,
      status: 0,
      at: Date.now(),
    };
    requests.push(recorded);
    const fault = faults.find((f) => f.left > 0 && (f.fault.match ?? (() => true))(recorded));
    if (fault) fault.left--;
    if (fault?.fault.hang) return;
    const answer = !fault || fault.fault.afterApplying ? (recorded.path.startsWith("/api/v4/") ? answerGitLab(recorded) : answerGitHub(recorded)) : undefined;
    const sent: Answer = fault ? { status: fault.fault.status ?? 500, body: fault.fault.body ?? { message: "Server Error" } } : (answer ?? { status: 404, body: { message: "Not Found" } });
    recorded.status = sent.status;
    res.writeHead(sent.status, { "content-type": "application/json; charset=utf-8", ...fault?.fault.headers });
    res.end(JSON.stringify(sent.body));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  const listening = await listenLocal(server);
  base = listening.url;

  return {
    url: base,
    requests,
    failNext(n, fault = {}) {
      faults.push({ left: n, fault });
    },
    reset() {
      requests.length = 0;
      faults = [];
      ids = { status: 0, deployment: 0, deploymentStatus: 0 };
      github = { statuses: [], deployments: [] };
      gitlab = { jobs: [], deployments: [] };
    },
    close: listening.close,
  };
}
