import { ECRClient, GetAuthorizationTokenCommand, type AuthorizationData, type ECRClientConfig } from "@aws-sdk/client-ecr";
import { systemClock, type Clock } from "../clock.ts";
import { classify, messageOf, PermanentError, RetryableError } from "../errors.ts";
import type { RegistryLogin } from "./auth.ts";

/** Which ECR registry to get a token for. */
export interface EcrTarget {
  region: string;
  /** Another ECR API endpoint than the region's own (a VPC endpoint; a test server). */
  endpoint?: string;
  /** The account whose registry; default the caller's own (ECR has deprecated asking for another). */
  registryId?: string;
}

/** Credentials for an ECR registry, as `docker login` takes them, and until when they hold. */
export interface EcrCredentials extends RegistryLogin {
  expiresAt: Date;
  /** The registry they are for, e.g. `https://012345678910.dkr.ecr.us-east-1.amazonaws.com`. */
  proxyEndpoint: string;
}

export interface EcrOptions {
  /** AWS credentials to ask with; default the SDK's chain (environment, profile, role). */
  credentials?: ECRClientConfig["credentials"];
  clock?: Clock;
  /** Where tokens are kept between calls, for one AWS identity; default this process's. */
  cache?: Map<string, EcrCredentials>;
}

/**
 * A token is asked for again this long before it expires: ECR gives 12 hours, and a release
 * that starts with a token must not have it expire while its engines pull.
 */
export const ECR_REFRESH_BEFORE_MS = 5 * 60_000;
const ECR_TIMEOUT_MS = 15_000;

const processCache = new Map<string, EcrCredentials>();

/** Registry credentials from ECR's GetAuthorizationToken, kept per registry until shortly before they expire. */
export async function ecrCredentials(target: EcrTarget, opts: EcrOptions = {}): Promise<EcrCredentials> {
  const cache = opts.cache ?? processCache;
  const now = (opts.clock ?? systemClock).now();
  const key = [target.region, target.endpoint ?? "", target.registryId ?? ""].join(" ");
  const kept = cache.get(key);
  if (kept !== undefined && kept.expiresAt.getTime() - ECR_REFRESH_BEFORE_MS > now) return kept;
  const fresh = await askEcr(target, opts);
  cache.set(key, fresh);
  return fresh;
}

async function askEcr(target: EcrTarget, opts: EcrOptions): Promise<EcrCredentials> {
  const client = new ECRClient({
    region: target.region,
    ...(target.endpoint !== undefined ? { endpoint: target.endpoint } : {}),
    ...(opts.credentials !== undefined ? { credentials: opts.credentials } : {}),
    requestHandler: { connectionTimeout: ECR_TIMEOUT_MS, requestTimeout: ECR_TIMEOUT_MS },
  });
  const where = `ECR in ${target.region}`;
  let data: AuthorizationData | undefined;
  try {
    const out = await client.send(new GetAuthorizationTokenCommand(target.registryId !== undefined ? { registryIds: [target.registryId] } : {}));
    data = out.authorizationData?.[0];
  } catch (err) {
    throw refusal(where, err);
  } finally {
    client.destroy();
  }
  const decoded = data?.authorizationToken !== undefined ? Buffer.from(data.authorizationToken, "base64").toString("utf8") : "";
  const colon = decoded.indexOf(":");
  if (colon <= 0 || data?.expiresAt === undefined || data.proxyEndpoint === undefined) {
    throw new PermanentError(`${where} answered GetAuthorizationToken without a token, its expiry and its registry`, { context: { region: target.region } });
  }
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), expiresAt: data.expiresAt, proxyEndpoint: data.proxyEndpoint };
}

/** The SDK's failure as the error tree's, with what to do about the usual ones. */
function refusal(where: string, err: unknown): RetryableError | PermanentError {
  const kind = classify(err);
  const name = (err as { name?: unknown } | null)?.name;
  const opts = { cause: err, context: { service: "ecr" } };
  if (kind.retryable) return new RetryableError(`${where} did not give a registry token: ${messageOf(err)}; retry later`, { ...opts, retryAfterMs: kind instanceof RetryableError ? kind.retryAfterMs : undefined });
  const hint =
    name === "AccessDeniedException"
      ? ": the AWS identity needs ecr:GetAuthorizationToken"
      : name === "CredentialsProviderError"
        ? ": give AWS credentials (environment, profile or role)"
        : "";
  return new PermanentError(`${where} refused a registry token (${typeof name === "string" ? `${name}: ` : ""}${messageOf(err)})${hint}`, opts);
}
