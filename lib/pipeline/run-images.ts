import { parseImageRef, repositoryOf } from "./image-ref.ts";
import type { Run } from "./run.ts";

/**
 * What a deploy releases: the pushed image by the digest the registry reported for it
 * (`repository@sha256:...`), so every environment, on any host, pulls the same bytes whatever
 * the tag points at later; without a push, the image built on the builder's engine.
 */
export function deployedImage(run: Run): string | undefined {
  const pushed = run.stages.find((s) => s.spec.kind === "push" && s.status === "succeeded")?.output;
  if (pushed?.image && pushed.digest) return `${repositoryOf(parseImageRef(pushed.image))}@${pushed.digest}`;
  return pushed?.image ?? run.image;
}

/** A compose build's images by service, as built (`<image>:<sha>`). */
export function builtImages(run: Run): Record<string, string> | undefined {
  return imagesOf(run, "build");
}

/** A compose build's images by service: each pushed one by digest, else as built. */
export function deployedImages(run: Run): Record<string, string> | undefined {
  return imagesOf(run, "push") ?? builtImages(run);
}

function imagesOf(run: Run, kind: "build" | "push"): Record<string, string> | undefined {
  return run.stages.find((s) => s.spec.kind === kind && s.status === "succeeded" && s.output?.images)?.output?.images;
}
