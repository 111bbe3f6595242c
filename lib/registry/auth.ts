/**
 * A login to a registry: a user and a password, or a user and a token the registry takes in
 * its place. It lives in memory only: never in a record, log or answer.
 */
export interface RegistryLogin {
  username: string;
  password: string;
}

/** A login as the Engine API takes it (the X-Registry-Auth header): with the registry it is for. */
export interface RegistryAuth extends RegistryLogin {
  serveraddress: string;
}
