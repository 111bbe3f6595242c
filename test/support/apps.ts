import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, readFile, rename, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type Dockerode from "dockerode";
import { makeContext, tarDir } from "./docker.ts";

/**
 * One app image per version. Two optional roles come from the container's environment (compose
 * `environment:`), so the same image serves them:
 * - `COUNTER_FILE=/data/count`: GET /count adds 1 to the number in that file (0 when missing, written
 *   atomically, flock'ed so replicas sharing a volume lose no counts) and answers "<n>\n"; GET /peek
 *   answers it without adding.
 * - `UPSTREAM=host:port` (e.g. `db:8080`, resolved per request): GET /db fetches the upstream's /count
 *   (2 s budget) and answers "<version> <n>\n", or 502 with the reason.
 * Without them /count, /peek and /db answer 404. See app-server.c.
 */
export interface AppVersion {
  /** What the app answers on /cgi-bin/app, e.g. "v2". */
  version: string;
  /** Serves /healthz (default true); false makes every health gate fail. */
  healthy?: boolean;
  /** Answers 500 to one request in this many (a bad canary). */
  failOneIn?: number;
}

const SOURCE = new URL("./app-server.c", import.meta.url);

let compiled: Promise<string> | undefined;

/** Builds app-server.c once per test process (keyed by its content, so an edit rebuilds). */
export function appServerBinary(): Promise<string> {
  compiled ??= (async () => {
    const source = await readFile(SOURCE);
    const out = join(tmpdir(), `hoist-app-server-${createHash("sha256").update(source).digest("hex").slice(0, 16)}`);
    if (!(await stat(out).catch(() => undefined))) {
      const temp = `${out}.${process.pid}`;
      await promisify(execFile)("gcc", ["-O2", "-static", "-o", temp, SOURCE.pathname]).catch((err: Error) => {
        throw new Error(`compiling test/support/app-server.c failed (needs gcc and libc6-dev: bash scripts/install.sh): ${err.message}`);
      });
      await rename(temp, out);
    }
    return out;
  })();
  return compiled;
}

/**
 * Builds a tiny web app image from the local busybox base: one static server process
 * (app-server.c) that answers the version on /cgi-bin/app, and /healthz; COUNTER_FILE and UPSTREAM
 * in the container's environment add /count, /peek and /db (see AppVersion).
 */
export async function buildApp(docker: Dockerode, tag: string, app: AppVersion): Promise<string> {
  const dir = await makeContext({
    Dockerfile: [
      "FROM hoist/busybox:latest",
      "COPY app-server /app-server",
      `CMD ["/app-server", "8080", ${JSON.stringify(app.version)}, "${app.healthy === false ? 0 : 1}", "${app.failOneIn ?? 0}"]`,
      "",
    ].join("\n"),
  });
  await copyFile(await appServerBinary(), join(dir, "app-server"));
  const stream = await docker.buildImage(tarDir(dir), { t: tag });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = out?.find((o) => o.error);
      if (err || failed) reject(err ?? new Error(`building ${tag}: ${failed?.error}`));
      else resolve();
    }),
  );
  return tag;
}
