import { BadInputError } from "../errors.ts";

/** A webhook body that is not the shape its event promises; the HTTP layer answers 400. */
export class BadPayloadError extends BadInputError {
  override readonly name = "BadPayloadError";
  readonly issues: readonly string[];

  constructor(what: string, issues: readonly string[]) {
    super(`${what}: ${issues.join("; ")}`);
    this.issues = issues;
  }
}
