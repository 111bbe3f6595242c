import type { RegistryAuth } from "./auth.ts";
import { manifestDigest } from "./client.ts";
import { ecrCredentials } from "./ecr.ts";
import type { RegistryStore } from "./registry.ts";

/** What stages and instance hosts need of registries: a host's login, and what a reference points at there. */
export interface RegistryAccess {
  /** The login registered for images under `host`; undefined: none is, and the registry is used anonymously. */
  login(host: string): Promise<RegistryAuth | undefined>;
  /** The manifest digest the registry holds for `ref` (a tag, or a digest it confirms). */
  digest(ref: string, auth: RegistryAuth | undefined): Promise<string>;
}

/** Short-lived logins (ECR tokens last 12 hours) for a registry of `region` and account `registryId`. */
export type TokenSource = (ecr: { region: string; registryId: string }) => Promise<{ username: string; password: string }>;

/** Logins from the registered registries: basic credentials as stored, ECR through `ecrLogin`. */
export function storedLogins(store: RegistryStore, ecrLogin: TokenSource): RegistryAccess["login"] {
  return async (host) => {
    const registry = await store.getRegistry(host);
    if (!registry) return undefined;
    if (registry.auth === "ecr" && registry.ecr) return { ...(await ecrLogin(registry.ecr)), serveraddress: host };
    const password = await store.registrySecret(host);
    return registry.username && password ? { username: registry.username, password, serveraddress: host } : undefined;
  };
}

/** Registries as the registered logins and the registries' own API give them; ECR through `ecrEndpoint` when set (tests). */
export function registryAccess(store: RegistryStore, opts: { ecrEndpoint?: string | undefined } = {}): RegistryAccess {
  const endpoint = opts.ecrEndpoint;
  return {
    login: storedLogins(store, (ecr) => ecrCredentials({ ...ecr, ...(endpoint ? { endpoint } : {}) })),
    digest: (ref, auth) => manifestDigest(ref, auth),
  };
}
