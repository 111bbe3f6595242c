import * as z from "zod";

/**
 * Ids and names that come from outside (a path, a pipeline file) and become table keys.
 * Checked before the table is asked: DynamoDB refuses a key over 1 KB with a validation
 * error, and a name it could store is still not one Hoist ever made.
 */

/** A run id as lib/runs/ids.ts makes them: `r` and 24 characters of Crockford's base32, lower case. */
export const RunId = z.string().regex(/^r[0-9a-hjkmnp-tv-z]{24}$/, "is a run id: r and 24 letters and digits, as `hoist runs` lists them");

/** An environment's name, in its registration and in the deploy stages that name it. */
export const ENVIRONMENT_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
export const EnvironmentName = z.string().regex(ENVIRONMENT_NAME, "is lower-case letters, digits and -, at most 40");

/** An id or name from outside as a message quotes it: a malformed one can be of any length. */
export function quoted(name: string): string {
  return name.length > 64 ? `${name.slice(0, 64)}…` : name;
}
