import picomatch from "picomatch";
import type { HoistFile } from "./schema.ts";

/** The part of a push that triggers look at. */
export interface PushRef {
  branch?: string;
  tag?: string;
}

/**
 * Names of the pipelines a push starts, in file order. Like GitHub Actions: `push: true`
 * or `push: {}` matches every branch and tag; naming only `branches` leaves tags out, and
 * naming only `tags` leaves branches out.
 */
export function matchPushPipelines(file: HoistFile, ref: PushRef): string[] {
  return Object.entries(file.pipelines)
    .filter(([, pipeline]) => {
      const push = pipeline.on.push;
      if (push === undefined) return false;
      if (push === true || (!push.branches && !push.tags)) return true;
      if (ref.branch !== undefined) return matches(push.branches, ref.branch);
      if (ref.tag !== undefined) return matches(push.tags, ref.tag);
      return false;
    })
    .map(([name]) => name);
}

function matches(globs: readonly string[] | undefined, name: string): boolean {
  return globs !== undefined && picomatch.isMatch(name, globs as string[], { dot: true });
}
