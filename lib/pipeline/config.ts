import { readYamlFile } from "../yaml/isolate.ts";
import { HOIST_FILE_LIMITS } from "../yaml/limits.ts";
import { describeIssues } from "../yaml/locate.ts";
import { HoistFile } from "./schema.ts";

/** The pipeline file's conventional path in the application repository. */
export const HOIST_FILE = ".hoist.yml";

export type ParsedConfig = { ok: true; file: HoistFile } | { ok: false; error: string };

/**
 * Parses `.hoist.yml` through the bounded, isolated YAML reader. Never rejects: a broken file
 * gives an error naming the line and the field (`.hoist.yml:7: pipelines.main.stages[1].test.timeout:
 * expected number`), so a run can fail with it and the user can fix the file.
 */
export async function parseHoistFile(text: string): Promise<ParsedConfig> {
  const read = await readYamlFile(text, { file: HOIST_FILE, limits: HOIST_FILE_LIMITS });
  if (!read.ok) return read;
  const result = HoistFile.safeParse(read.value);
  if (result.success) return { ok: true, file: result.data };
  return { ok: false, error: describeIssues(HOIST_FILE, read.lines, result.error.issues) };
}
