import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import * as z from "../zod-mini.ts";
import { ConfigError, ConfigSchema, loadConfig, processEnv, type Config, type Env } from "../config.ts";

/** How long a cold start waits on Secrets Manager before it fails (and Lambda retries it). */
export const SECRET_TIMEOUT_MS = 10_000;

const SecretSettings = z.record(z.string(), z.string({ error: "is not a string: every value is JSON text, as \"30000\"" }).check(z.maxLength(16_384, "is longer than 16 KiB")), {
  error: "is not a JSON object of strings",
});

/**
 * The config of a function on AWS: its environment, plus the settings kept in the Secrets
 * Manager secret HOIST_SECRETS_ARN names (webhook secrets, tokens), read once per cold start:
 * each function awaits this at import, so a warm container never asks again. An empty value
 * is an unset one (the stack's template holds every key); a key Hoist does not know, or one
 * set both in the secret and the function's environment, is refused rather than ignored.
 */
export async function loadFunctionConfig(env: Env = processEnv(), timeoutMs = SECRET_TIMEOUT_MS): Promise<Config> {
  const arn = env.HOIST_SECRETS_ARN;
  if (!arn) return loadConfig(env);
  const client = new SecretsManagerClient({
    ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
    ...(env.AWS_ENDPOINT_URL_SECRETS_MANAGER ? { endpoint: env.AWS_ENDPOINT_URL_SECRETS_MANAGER } : {}),
  });
  let text: string | undefined;
  try {
    text = (await client.send(new GetSecretValueCommand({ SecretId: arn }), { abortSignal: AbortSignal.timeout(timeoutMs) })).SecretString;
  } catch (err) {
    throw new ConfigError(`could not read the secret ${arn} (HOIST_SECRETS_ARN): ${(err as Error).message}: check that it exists and that this function may read it`, { cause: err });
  } finally {
    client.destroy();
  }
  return loadConfig({ ...env, ...secretSettings(arn, text, env) });
}

function secretSettings(arn: string, text: string | undefined, env: Env): Env {
  let json: unknown;
  try {
    json = JSON.parse(text ?? "");
  } catch {
    throw new ConfigError(`the secret ${arn} (HOIST_SECRETS_ARN) is not JSON: it holds settings as {"GITHUB_WEBHOOK_SECRET": "...", ...}`);
  }
  const parsed = SecretSettings.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`the secret ${arn} (HOIST_SECRETS_ARN) ${issue?.path.length ? `holds ${issue.path.join(".")}, which ` : ""}${issue?.message ?? "is malformed"}`);
  }
  const settings = Object.entries(parsed.data).filter(([, value]) => value !== "");
  const unknown = settings.map(([key]) => key).filter((key) => !(key in ConfigSchema.shape));
  if (unknown.length) throw new ConfigError(`the secret ${arn} (HOIST_SECRETS_ARN) holds ${unknown.join(", ")}, which Hoist does not read: remove or rename them`);
  const twice = settings.map(([key]) => key).filter((key) => env[key] !== undefined && env[key] !== "");
  if (twice.length) throw new ConfigError(`${twice.join(", ")} set both in the secret ${arn} and in the function's environment: keep each in one place`);
  return Object.fromEntries(settings);
}
