import type { Readable } from "node:stream";
import type { Provider, RepoRef } from "../pipeline/refs.ts";

/** A push as Hoist understands it, whichever provider sent it. */
export interface PushEvent {
  provider: Provider;
  repo: RepoRef;
  /** Full ref, e.g. refs/heads/main or refs/tags/v1.2.0. */
  ref: string;
  branch?: string;
  tag?: string;
  /** The pushed head commit (40 hex). */
  sha: string;
  /** True for a branch or tag deletion (after sha all zeros): acknowledged, never run. */
  deleted: boolean;
  actor?: string;
  /** The pusher's email, as the provider gives it: what a Slack approver's email is matched against for self-approval. */
  actorEmail?: string;
}

/** What a verified webhook delivery turns into. */
export type SourceEvent =
  | { kind: "push"; delivery: string; push: PushEvent }
  | { kind: "ping"; delivery: string }
  | { kind: "ignored"; delivery: string; reason: string };

/** The commit a ref names, and the branch or tag it was looked up as. */
export interface ResolvedRef {
  sha: string;
  branch?: string;
  tag?: string;
}

/** Reads repository content at a commit. */
export interface SourceReader {
  /** The text of `path` at `sha`, or undefined when the file does not exist there. */
  readFile(repo: RepoRef, sha: string, path: string): Promise<string | undefined>;
  /** The repository tree at `sha` as an uncompressed tar, files at the archive root. */
  archive(repo: RepoRef, sha: string): Promise<Readable>;
  /**
   * The commit `ref` names now: a branch's head (a bare name or refs/heads/<name>), a tag's
   * commit (refs/tags/<name>), or a full sha, returned as it is once it is known to exist.
   * Undefined when there is no such ref or commit (lib/scm/refs.ts reads the ref).
   */
  resolveRef(repo: RepoRef, ref: string): Promise<ResolvedRef | undefined>;
}
