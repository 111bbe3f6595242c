import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SampleApp {
  path: string;
  sha: string;
  branch: string;
}

export interface SampleAppOptions {
  /** Image name in .hoist.yml. */
  image: string;
  /** The test stage's command; fails the run when it exits non-zero. */
  test?: string;
  /** Extra Dockerfile lines after the COPY (e.g. a slow RUN for fault tests). */
  dockerfileExtra?: string;
  /** Replaces the generated .hoist.yml. */
  hoistYml?: string;
  branch?: string;
  /** Adds a compose app (web, worker, a counter with a named volume) and a deploy stage to this environment. */
  deployTo?: string;
}

/**
 * The sample's compose app: the routed web (blue-green), a worker, and a "counter" that notes
 * each of its starts in a named volume; it runs the base image, so a new version of the app
 * leaves it running, untouched.
 */
export const SAMPLE_COMPOSE = `services:
  web:
    build: .
    ports: ["8080"]
    depends_on: [counter]
    deploy: { replicas: 2 }
    x-hoist:
      strategy: blue-green
      health: { path: /, interval: 200ms, retries: 30 }
      drain: 1s
  worker:
    build: .
    command: ["sh", "-c", "while true; do date > /tmp/heartbeat; sleep 5; done"]
  counter:
    image: hoist/busybox:latest
    command: ["sh", "-c", "date >> /data/starts && exec httpd -f -p 9000 -h /data"]
    volumes: ["data:/data"]
volumes:
  data: {}
`;

/**
 * A tiny web app repository: a busybox httpd image, a test that checks its page, and a
 * `.hoist.yml` that builds, tests and pushes it. Used by `hoist demo`, tests and benchmarks.
 */
export async function createSampleApp(dir: string, opts: SampleAppOptions): Promise<SampleApp> {
  const branch = opts.branch ?? "main";
  await mkdir(join(dir, "www"), { recursive: true });
  await writeFile(join(dir, "www", "index.html"), "<h1>hello from hoist</h1>\n");
  await writeFile(
    join(dir, "Dockerfile"),
    ["FROM hoist/busybox:latest", "COPY www /www", opts.dockerfileExtra ?? "", 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]', ""].join("\n"),
  );
  await writeFile(
    join(dir, ".hoist.yml"),
    opts.hoistYml ??
      [
        "pipelines:",
        "  main:",
        `    on: { push: { branches: [${branch}] }, manual: true }`,
        "    stages:",
        `      - build: { image: ${opts.image} }`,
        `      - test: { run: ${JSON.stringify(opts.test ?? "grep -q hello /www/index.html")}, timeout: 120 }`,
        "      - push:",
        ...(opts.deployTo ? [`      - deploy: { environment: ${opts.deployTo} }`] : []),
        "",
      ].join("\n"),
  );
  if (opts.deployTo) await writeFile(join(dir, "docker-compose.yml"), SAMPLE_COMPOSE);
  return commitAll(dir, branch, "sample app");
}

/** Commits everything in `dir` (initialising the repository if needed); returns the new sha. */
export async function commitAll(dir: string, branch: string, message: string): Promise<SampleApp> {
  const git = (...args: string[]) => run("git", ["-C", dir, "-c", "user.name=Hoist Demo", "-c", "user.email=demo@hoist.invalid", ...args]);
  await git("init", "-q", "-b", branch).catch(() => undefined); // already a repository
  await git("add", "-A");
  await git("commit", "-q", "--allow-empty", "-m", message);
  const { stdout } = await git("rev-parse", "HEAD");
  return { path: dir, sha: stdout.trim(), branch };
}
