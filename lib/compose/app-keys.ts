import { SERVICE_KEYS_READ, type KeysRead } from "./service-schema.ts";
import { appShape } from "./app-schema.ts";

const keysOf = (shape: object): KeysRead => Object.fromEntries(Object.keys(shape).map((k) => [k, true as const]));

/**
 * The keys an application release acts on (or refuses where they are set: see refusals.ts); the
 * deploy stage warns about every other, with its line.
 */
export const APP_SERVICE_KEYS_READ: { file: KeysRead; service: KeysRead } = {
  file: {
    services: true,
    name: true,
    version: true,
    // A declared volume's driver is refused; `external` is mounted by its name where allowed.
    volumes: { "*": { external: true, driver: true, driver_opts: true, name: true } },
    networks: { "*": { external: true } },
    // Read or refused per secret and config (app.ts): environment is read, a config's file and
    // content too; a secret's file, external and the rest are refused.
    secrets: { "*": true },
    configs: { "*": true },
  },
  service: {
    ...SERVICE_KEYS_READ,
    ...keysOf(appShape),
    // Read as refusals: set, they fail the stage (refusals.ts), unless `host`-free.
    network_mode: true,
    volumes_from: true,
    devices: true,
    security_opt: true,
  },
};
