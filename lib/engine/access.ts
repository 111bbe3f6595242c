import * as z from "../zod-mini.ts";

/**
 * How Hoist reaches a Docker engine, the builder's or an environment's: its endpoint and the
 * credentials that prove Hoist to it and it to Hoist. One schema for both, so a builder host
 * takes exactly the forms and checks an environment does.
 */

/** The engine on this machine, where Hoist builds and releases when told of no other. */
export const LOCAL_ENGINE = "unix:///var/run/docker.sock";

/** An address of one of the given schemes that URL parsing accepts, with no password in it (GET shows it). */
export const address = (pattern: RegExp, expected: string) =>
  z.string().check(
    z.regex(pattern, expected),
    z.refine((a) => URL.canParse(a), { message: `is not a valid address: ${expected}` }),
    z.refine((a) => !URL.canParse(a) || new URL(a).password === "", { message: "must not hold a password: give engine.ssh.key (ssh) or engine.tls (tcp) instead" }),
  );

const engineEndpoint = address(/^(unix:\/\/\/|tcp:\/\/|ssh:\/\/)\S+$/, "is unix:///path/docker.sock, tcp://host:port or ssh://user@host");

/** Loopback engines may speak plain HTTP; any other tcp:// engine hands root on its host to whoever can reach it. */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

const path = z.string().check(z.minLength(1));

export const EngineAccess = z
  .strictObject({
    endpoint: engineEndpoint,
    /** Paths of the client certificate, key and CA for tcp:// with TLS. */
    tls: z.optional(z.strictObject({ ca: path, cert: path, key: path })),
    /** For ssh://: the private key's path and the engine host's key fingerprint, which is checked. */
    ssh: z.optional(
      z.strictObject({
        key: path,
        hostKey: z.string().check(z.regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'is the host key\'s fingerprint, "SHA256:..." (ssh-keyscan HOST | ssh-keygen -lf -)')),
      }),
    ),
  })
  .check(
    z.refine((e) => !e.endpoint.startsWith("ssh://") || e.ssh, {
      message: "an ssh:// engine needs ssh: {key, hostKey}: the private key's path and the host key's fingerprint",
      path: ["ssh"],
    }),
    z.refine((e) => !e.tls || e.endpoint.startsWith("tcp://"), { message: "tls applies to a tcp:// engine only", path: ["tls"] }),
    z.refine((e) => !e.ssh || e.endpoint.startsWith("ssh://"), { message: "ssh applies to an ssh:// engine only", path: ["ssh"] }),
    z.refine((e) => !e.endpoint.startsWith("tcp://") || e.tls || !URL.canParse(e.endpoint) || LOOPBACK.has(new URL(e.endpoint).hostname), {
      message: "a tcp:// engine on another host needs tls: {ca, cert, key} (dockerd --tlsverify); plain tcp gives anyone on the way root on that host",
      path: ["tls"],
    }),
  );
export type EngineAccess = z.infer<typeof EngineAccess>;
