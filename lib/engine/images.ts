import type Dockerode from "dockerode";
import { parseImageRef, repositoryOf } from "../pipeline/image-ref.ts";
import { registryHostOf } from "../registry/host.ts";
import type { RegistryAuth } from "../registry/auth.ts";
import { EngineError, instanceHostError, localImage, statusOf } from "./docker.ts";
import { registryFailure } from "./registry-failure.ts";

/** The login for a registry host, or undefined for none (anonymous). */
export type RegistryLogins = (host: string) => Promise<RegistryAuth | undefined>;

export const anonymous: RegistryLogins = async () => undefined;

/**
 * Makes sure the engine holds `ref`, pulling it with its registry's login when it does not (a
 * release by digest on a host that did not build it, or a rollback to an image removed since).
 * Answers the engine's record of the image.
 */
export async function ensureImage(docker: Dockerode, ref: string, logins: RegistryLogins): Promise<Dockerode.ImageInspectInfo> {
  const held = await localImage(docker, ref);
  if (held) return held;
  // Only a reference by digest is pulled: a tag may name other bytes by now, and a name without
  // a registry is Docker Hub's, where anyone may publish it.
  if (parseImageRef(ref).digest === undefined)
    throw new EngineError(`image ${ref} is not on the engine, and only images released by digest are pulled: add a push stage before the deploy (a pushed image is released by its digest), or build on this engine`, { retryable: false });
  const host = registryHostOf(ref);
  const auth = await logins(host);
  let failure: string | undefined;
  try {
    const stream = (await docker.pull(ref, auth ? { authconfig: auth } : {})) as NodeJS.ReadableStream;
    // The daemon reports a failed pull inside the stream, as a line with `error`.
    failure = await new Promise<string | undefined>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: { error?: string; errorDetail?: { message?: string } }[]) => {
        if (err) reject(err);
        else resolve(out.map((o) => o.errorDetail?.message ?? o.error).find(Boolean));
      }),
    );
  } catch (err) {
    // An engine that does not answer at all is the engine's outage, said as such.
    if (statusOf(err) === undefined) throw instanceHostError(`pull ${ref}`, err);
    failure = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
  }
  if (failure) {
    const { message, retryable } = registryFailure("pull", ref, host, auth, failure.trim());
    throw new EngineError(message, { retryable });
  }
  const pulled = await localImage(docker, ref);
  if (!pulled) throw new EngineError(`pulling ${ref} ended, yet the engine has no ${ref}: retrying later`, { retryable: true });
  return pulled;
}

/**
 * The registry digest of the image a container runs, for a release of `image`: the one among the
 * image's RepoDigests in `image`'s repository. Undefined for an image no registry holds (built on
 * this engine and never pushed).
 */
export async function runningDigest(docker: Dockerode, container: string, image: string): Promise<string | undefined> {
  let imageId: string;
  try {
    imageId = (await docker.getContainer(container).inspect()).Image;
  } catch (err) {
    throw instanceHostError(`inspect ${container}`, err);
  }
  const info = await localImage(docker, imageId);
  const ref = parseImageRef(image);
  const repo = repositoryOf(ref);
  const digests = (info?.RepoDigests ?? []).filter((d) => d.startsWith(`${repo}@`)).map((d) => d.slice(repo.length + 1));
  return ref.digest && digests.includes(ref.digest) ? ref.digest : digests[0];
}
