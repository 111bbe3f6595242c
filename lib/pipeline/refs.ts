import * as z from "../zod-mini.ts";

export const Provider = z.enum(["github", "gitlab"]);
export type Provider = z.infer<typeof Provider>;

export const RepoRef = z.object({
  provider: Provider,
  /** owner/name (GitHub) or group/project path (GitLab). */
  fullName: z.string(),
  /** Provider project id (GitLab) or repository id (GitHub). */
  id: z.optional(z.union([z.string(), z.number()])),
  cloneUrl: z.string(),
});
export type RepoRef = z.infer<typeof RepoRef>;

/** The commit a run builds, as its push named it: a record (run, delivery) spreads this shape. */
export const CommitRef = z.object({
  repo: RepoRef,
  ref: z.string(),
  branch: z.optional(z.string()),
  tag: z.optional(z.string()),
  sha: z.string().check(z.regex(/^[0-9a-f]{7,64}$/)),
});
