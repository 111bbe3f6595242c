import { readDotEnv } from "../compose/dotenv.ts";
import type { Run } from "../pipeline/run.ts";
import type { SourceReader } from "../scm/port.ts";

/** What a stage that reads compose files needs from the repository at the run's sha. */
export interface ComposeInputs {
  text: string;
  /** Compose's `.env`, beside the compose file: the values its `${VAR}`s take. */
  dotEnv: Record<string, string>;
  overrides: { file: string; text: string }[];
  readFile: (path: string) => Promise<string | undefined>;
}

/** The stage's compose file, the files merged over it, and its `.env`; or what is missing. */
export async function readComposeInputs(source: SourceReader, run: Run, compose: string, overrideFiles: readonly string[] = []): Promise<ComposeInputs | { error: string }> {
  const readFile = (path: string) => source.readFile(run.repo, run.sha, path);
  const at = `${run.repo.fullName} at ${run.sha.slice(0, 12)}`;
  const text = await readFile(compose);
  if (text === undefined) return { error: `${compose} not found in ${at}` };
  const dotEnvPath = compose.includes("/") ? `${compose.slice(0, compose.lastIndexOf("/"))}/.env` : ".env";
  const dotEnvText = await readFile(dotEnvPath);
  const dotEnv = dotEnvText === undefined ? { ok: true as const, variables: {} } : readDotEnv(dotEnvText, dotEnvPath);
  if (!dotEnv.ok) return { error: dotEnv.error };
  const overrides: { file: string; text: string }[] = [];
  for (const file of overrideFiles) {
    const more = await readFile(file);
    if (more === undefined) return { error: `${file} (in the stage's compose list) not found in ${at}` };
    overrides.push({ file, text: more });
  }
  return { text, dotEnv: dotEnv.variables, overrides, readFile };
}
