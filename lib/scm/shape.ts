import * as z from "../zod-mini.ts";
import { BadPayloadError } from "./errors.ts";

/** Zod issues as `field.path: message` lines, so a 400 names what was wrong. */
export function describeIssues(error: z.core.$ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join(".") : "(body)"}: ${issue.message}`);
}

export function parseOrThrow<S extends z.core.$ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  const result = z.safeParse(schema, body);
  if (!result.success) throw new BadPayloadError(what, describeIssues(result.error));
  return result.data;
}

export const ZERO_SHA = /^0+$/;

/** Branch and tag names from a full ref; other refs (notes, pulls) yield neither. */
export function branchOrTag(ref: string): { branch?: string; tag?: string } {
  if (ref.startsWith("refs/heads/")) return { branch: ref.slice("refs/heads/".length) };
  if (ref.startsWith("refs/tags/")) return { tag: ref.slice("refs/tags/".length) };
  return {};
}

/**
 * The pusher's email when the provider gives a real one: GitLab sends "[REDACTED]" for a
 * hidden address, and a bounded length keeps a record small.
 */
export function email(address: string | null | undefined): { actorEmail?: string } {
  return address && address.length <= 254 && /^[^\s@]+@[^\s@]+$/.test(address) ? { actorEmail: address } : {};
}
