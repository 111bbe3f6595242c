import * as z from "zod";

/**
 * An environment's variables, set on the server (`hoist env vars set ENV KEY=VALUE`): the values a
 * compose file's `${VAR}`s take there, over the repository's `.env`. A variable set `--secret` is
 * write-only: no answer, log or record shows its value, it is never interpolated into the file
 * (where it could land in a container's environment), and it reaches a container only as a file,
 * through the compose file's `secrets:` (`secrets: { db_password: { environment: DB_PASSWORD } }`).
 */

/** A variable's name, as a shell and Compose spell one. */
export const VariableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "is a variable name: letters, digits and _, not starting with a digit, at most 128");

/** What PUT /api/environments/:env/variables/:name takes. */
export const VariableWrite = z.object({ value: z.string().max(64 * 1024), secret: z.boolean().default(false) }).strict();

/** A variable as the API shows it: a secret one without its value. */
export const Variable = z
  .object({
    name: VariableName,
    secret: z.boolean(),
    /** Absent for a secret. */
    value: z.string().optional(),
    /** Changes with each write: a service whose secret changed is released again. */
    version: z.string(),
    updatedAt: z.number(),
  })
  .strict();
export type Variable = z.infer<typeof Variable>;

/** A variable with its value, secret or not: only a release asks for these. */
export interface VariableValue {
  name: string;
  value: string;
  secret: boolean;
  version: string;
}

/** An environment holds at most this many variables: they go into each of its releases. */
export const MAX_VARIABLES = 500;

export interface VariableStore {
  /** Sets (or replaces) a variable; fails with a ConflictError past MAX_VARIABLES. */
  putVariable(env: string, name: string, value: string, secret: boolean): Promise<Variable>;
  /** Every variable of the environment, by name, secret values left out. */
  listVariables(env: string): Promise<Variable[]>;
  deleteVariable(env: string, name: string): Promise<boolean>;
  /** Every variable with its value, for a release. */
  variableValues(env: string): Promise<VariableValue[]>;
}
