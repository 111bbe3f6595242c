import * as z from "zod";
import { isDockerHubAlias } from "./host.ts";

/**
 * A registry as an operator registers it (API or CLI), by host: the credentials that push
 * stages and environment engines use for images under that host. The password (or token) is
 * write-only: it is kept apart from the registration, which is what GET answers.
 */

/** `host[:port]` as Docker names a registry in an image reference: lower-case DNS name or IP, no scheme. */
export const RegistryHost = z
  .string()
  .max(261)
  .regex(/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(:\d{1,5})?$/, 'is a registry host as image names give it, in lower case, e.g. ghcr.io, registry.example.com:5000 or 127.0.0.1:5001 (no "https://")')
  .refine(portInRange, { message: "has a port outside 1-65535" })
  // Every reference to Docker Hub is looked up as docker.io (host.ts): a login registered under
  // one of Hub's other names would be accepted and never used.
  .refine((h) => !isDockerHubAlias(h), { message: 'is one of Docker Hub\'s names: register Docker Hub as "docker.io"' });

function portInRange(host: string): boolean {
  const port = /:(\d+)$/.exec(host)?.[1];
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
}


/** Amazon ECR's registry for an account and region: the login comes from GetAuthorizationToken. */
const ECR_HOST = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;

/** What PUT /api/registries/:host takes: a username with a password or token, or `ecr`. */
export const RegistryRegistration = z.union([
  z
    .object({
      username: z.string().min(1).max(256),
      /** A password, or a token the registry accepts in its place (GitHub, GitLab, Docker Hub). */
      password: z.string().min(1).max(8192),
    })
    .strict(),
  z
    .object({
      /** Tokens from the AWS SDK's GetAuthorizationToken with the server's own AWS credentials. */
      ecr: z.object({ region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "is an AWS region, e.g. eu-west-1") }).strict(),
    })
    .strict(),
]);
export type RegistryRegistration = z.infer<typeof RegistryRegistration>;

/** A registered registry, without its secret: what the store keeps in the open and GET answers. */
export const Registry = z
  .object({
    host: RegistryHost,
    auth: z.enum(["basic", "ecr"]),
    username: z.string().optional(),
    ecr: z.object({ region: z.string(), registryId: z.string() }).strict().optional(),
    updatedAt: z.number(),
  })
  .strict();
export type Registry = z.infer<typeof Registry>;

/**
 * The registry record and its secret from what an operator sent; an `ecr` registration must
 * name an ECR host (the account comes from it), and a host of ECR's form must be `ecr`.
 */
export function registryFrom(host: string, body: RegistryRegistration, now: number): { registry: Registry; secret?: string } | { error: string } {
  const ecrHost = ECR_HOST.exec(host);
  if ("ecr" in body) {
    if (!ecrHost) return { error: `ecr applies to an Amazon ECR host, ACCOUNT.dkr.ecr.REGION.amazonaws.com; ${host} is not one` };
    if (ecrHost[2] !== body.ecr.region) return { error: `${host} is in region ${ecrHost[2]}, not ${body.ecr.region}` };
    return { registry: { host, auth: "ecr", ecr: { region: body.ecr.region, registryId: ecrHost[1] ?? "" }, updatedAt: now } };
  }
  return { registry: { host, auth: "basic", username: body.username, updatedAt: now }, secret: body.password };
}

export interface RegistryStore {
  /** Registers or replaces a registry; `secret` is stored apart from the record and never read back by GET. */
  putRegistry(registry: Registry, secret: string | undefined): Promise<void>;
  getRegistry(host: string): Promise<Registry | undefined>;
  /** The registry's password or token; only credential lookups call this. */
  registrySecret(host: string): Promise<string | undefined>;
  listRegistries(): Promise<Registry[]>;
  /** False when there was no such registry. */
  deleteRegistry(host: string): Promise<boolean>;
}
