import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import type Dockerode from "dockerode";
import { pack } from "tar-fs";
import { dockerClient } from "../../lib/engine/client.ts";
import { statusOf } from "../../lib/engine/docker.ts";
import { waitFor } from "./wait.ts";

export const ENGINE_SOCKET = "/var/run/docker.sock";
export const REGISTRY_URL = "http://127.0.0.1:5000";
const HOW_TO_START = "run `bash scripts/services.sh` (or `bash .ci/run`)";

/** A client for the local engine; fails (never skips) with how to start it when it does not answer. */
export async function requireDocker(socketPath = ENGINE_SOCKET): Promise<Dockerode> {
  const docker = dockerClient({ socketPath });
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`Docker engine not reachable at ${socketPath}: ${HOW_TO_START}`, { cause: err });
  }
  return docker;
}

/** Checks that the registry answers its API base endpoint; fails with how to start it. */
export async function requireRegistry(url = REGISTRY_URL): Promise<void> {
  let status: number | string;
  try {
    status = (await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(5_000) })).status;
  } catch (err) {
    status = String(err);
  }
  if (status !== 200) {
    throw new Error(`Docker registry not reachable at ${url} (${status}): ${HOW_TO_START}`);
  }
}

/**
 * Force-removes the containers carrying `label` (a `key` or `key=value` filter) whose labels
 * pass `keep`. A container already being removed (409, e.g. a Swarm task its service is
 * scaling away) or already gone (404) is no failure: the point is that it ends up gone.
 */
export async function removeContainers(
  docker: Dockerode,
  label: string,
  keep: (labels: Record<string, string>) => boolean = () => true,
): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(
    containers
      .filter((c) => keep(c.Labels))
      .map(async (c) => {
        try {
          await docker.getContainer(c.Id).remove({ force: true });
        } catch (err) {
          const status = statusOf(err);
          if (status !== 404 && status !== 409) throw err;
        }
      }),
  );
}

/** Writes `files` (relative path → content) into a new temp directory and returns its path. */
export async function makeContext(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "hoist-ctx-"));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

/** The directory as a tar stream with its files at the archive root, as JobSpec.files wants. */
export function tarDir(dir: string): Readable {
  // tar-fs packs into a streamx stream; wrap it so callers get a Node Readable.
  return Readable.from(pack(dir));
}

/** A short random suffix that keeps names of one test run apart from others'. */
export function uniqueSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}

/**
 * Runs `cmd` in a running container: what it printed (stdout and stderr, the stream's frame
 * headers dropped) and its exit code.
 */
export async function execIn(docker: Dockerode, container: string, cmd: string[]): Promise<{ code: number; out: string }> {
  const exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on("data", (c: Buffer) => chunks.push(c));
  docker.modem.demuxStream(stream, out, out);
  await new Promise((resolve) => stream.on("end", resolve));
  // The output can end a moment before the engine records the exit code.
  const code = await waitFor(`the exit code of ${cmd.join(" ")} in ${container}`, async () => {
    const info = await exec.inspect();
    return info.Running ? undefined : (info.ExitCode ?? undefined);
  }, 10_000, 50);
  return { code, out: Buffer.concat(chunks).toString("utf8") };
}

/** A file's text inside a running container (`cat` through exec). */
export async function readContainerFile(docker: Dockerode, container: string, path: string): Promise<string> {
  return (await execIn(docker, container, ["cat", path])).out;
}
