import { parse } from "dotenv";

/** A `.env` file is a few dozen lines; past these it is no `.env`, and it is refused. */
export const DOTENV_LIMITS = { maxBytes: 256 * 1024, maxVariables: 2_000 } as const;

/**
 * The variables of a repository's `.env` (next to its compose file, as Compose reads it):
 * `KEY=value` lines, quotes, `export ` prefixes and comments, parsed by dotenv. Values are
 * taken as written: a `${...}` inside a `.env` value is not expanded.
 */
export function readDotEnv(text: string, file: string): { ok: true; variables: Record<string, string> } | { ok: false; error: string } {
  if (Buffer.byteLength(text) > DOTENV_LIMITS.maxBytes) return { ok: false, error: `${file} is over ${DOTENV_LIMITS.maxBytes / 1024} KiB: a .env file holds variables, not data` };
  const variables = parse(text);
  const count = Object.keys(variables).length;
  if (count > DOTENV_LIMITS.maxVariables) return { ok: false, error: `${file} sets ${count} variables, more than ${DOTENV_LIMITS.maxVariables}` };
  return { ok: true, variables };
}
