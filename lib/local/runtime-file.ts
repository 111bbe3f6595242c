import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as z from "zod";

/** Where a running local runtime's table and queue are: what `hoist invoke` runs functions against. */
export const RuntimeFile = z
  .object({ url: z.string().url(), dynamodb: z.string().url(), sqs: z.string(), table: z.string().min(1), queueUrl: z.string().url() })
  .strict();
export type RuntimeFile = z.infer<typeof RuntimeFile>;

export const runtimeFile = (dataDir: string): string => join(dataDir, "runtime.json");

export async function writeRuntimeFile(path: string, found: RuntimeFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(RuntimeFile.parse(found)), { mode: 0o600 });
}

/** The running runtime's endpoints, or undefined when none has written them (or the file is not one). */
export async function readRuntimeFile(path: string): Promise<RuntimeFile | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return RuntimeFile.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}
