import { readApp, type AppOptions } from "../../lib/compose/app.ts";
import type { ReleaseSpec } from "../../lib/release/spec.ts";

/** A compose file read as the deploy stage reads it; a refusal fails the test with its reason. */
export async function appSpec(text: string, options: AppOptions = {}): Promise<ReleaseSpec> {
  const r = await readApp(text, options);
  if (!r.ok) throw new Error(r.error);
  return r.spec;
}
