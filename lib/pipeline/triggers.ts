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

// Parsed files are cached per commit, so their glob lists are the same objects push after
// push: compile each list once instead of on every webhook.
const compiled = new WeakMap<readonly string[], picomatch.Matcher>();

function matches(globs: readonly string[] | undefined, name: string): boolean {
  if (globs === undefined) return false;
  let matcher = compiled.get(globs);
  if (!matcher) {
    matcher = picomatch(globs as string[], { dot: true });
    compiled.set(globs, matcher);
  }
  return matcher(name);
}
