import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BadInputError, classify, NotFoundError, PermanentError, RetryableError } from "../../lib/errors.ts";
import { parseChallenges } from "../../lib/registry/challenge.ts";
import type { RegistryLogin } from "../../lib/registry/auth.ts";
import { manifestDigest, MAX_TOKEN_BYTES } from "../../lib/registry/client.ts";
import { registryLocation } from "../../lib/registry/location.ts";

/**
 * The client against a local server standing in for a registry and its token service. Each
 * test sets `handle`; the server records every request it was asked, with its headers.
 */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let host: string;
let handle: Handler;
const asked: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    asked.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  // Requests left hanging on purpose must not hold the server open.
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  asked.length = 0;
});

const PASSWORD = "s3cr3t-Password-0f-the-test";
const TOKEN = "tok-Secret-Bearer-0f-the-test";
const auth: RegistryLogin = { username: "hoist", password: PASSWORD };
const BASIC = `Basic ${Buffer.from(`hoist:${PASSWORD}`).toString("base64")}`;
const DIGEST = `sha256:${"a1".repeat(32)}`;
const OTHER_DIGEST = `sha256:${"b2".repeat(32)}`;
const MANIFEST_PATH = "/v2/team/app/manifests/v1";

const manifest: Handler = (_req, res) => {
  res.writeHead(200, { "docker-content-digest": DIGEST, "content-type": "application/vnd.oci.image.index.v1+json", "content-length": "512" });
  res.end();
};
const status = (code: number, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(code, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ errors: [{ code: "ERROR", message: `answered ${code}` }] }));
};
const never: Handler = () => undefined;

/** A registry that challenges with `challenge` until the request carries `authorization`. */
const guarded = (challenge: () => string, authorization: () => string, then: Handler = manifest): Handler => (req, res) => {
  if (req.headers.authorization === authorization()) return then(req, res);
  status(401, { "www-authenticate": challenge() })(req, res);
};

/** A registry on this server whose token service (`/token`) gives TOKEN for `answer`. */
const withTokens = (answer: Handler, then: Handler = manifest): Handler => (req, res) => {
  if (req.url?.startsWith("/token")) return answer(req, res);
  guarded(() => `Bearer realm="http://${host}/token",service="test-registry",scope="repository:team/app:pull"`, () => `Bearer ${TOKEN}`, then)(req, res);
};
const tokenAnswer = (body: unknown): Handler => (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

/** The rejection of `promise`, and how long it took. */
async function failure(promise: Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    return { error: error as Error, ms: Date.now() - started };
  }
  throw new Error("expected a failure");
}

/** Everything an error says: its message, stack and context, and those of its causes. */
function everythingSaid(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: unknown; stack?: unknown; context?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    parts.push(String(e.message), String(e.stack), JSON.stringify(e.context ?? {}), String(e));
  }
  return parts.join("\n");
}

describe("manifestDigest asks the registry API for a digest", () => {
  it("a tag: HEAD with every manifest type accepted, the Docker-Content-Digest returned", async () => {
    handle = manifest;
    expect(await manifestDigest(`${host}/team/app:v1`, undefined)).toBe(DIGEST);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toMatchObject({ method: "HEAD", url: MANIFEST_PATH });
    const accept = String(asked[0]?.headers.accept);
    for (const type of [
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.docker.distribution.manifest.list.v2+json",
      "application/vnd.docker.distribution.manifest.v2+json",
    ])
      expect(accept).toContain(type);
  });

  it("a digest: confirmed in the registry and returned, even where the tag has moved on", async () => {
    handle = (req, res) => (req.url === `/v2/team/app/manifests/${OTHER_DIGEST}` ? manifest(req, res) : status(404)(req, res));
    expect(await manifestDigest(`${host}/team/app:v1@${OTHER_DIGEST}`, undefined)).toBe(OTHER_DIGEST);
    expect(asked.map((r) => r.url)).toEqual([`/v2/team/app/manifests/${OTHER_DIGEST}`]);
  });

  it("Basic: a 401 with a Basic challenge is asked again with the credentials", async () => {
    handle = guarded(() => 'Basic realm="test-registry"', () => BASIC);
    expect(await manifestDigest(`${host}/team/app:v1`, auth)).toBe(DIGEST);
    expect(asked.map((r) => [r.method, r.url, r.headers.authorization])).toEqual([
      ["HEAD", MANIFEST_PATH, undefined],
      ["HEAD", MANIFEST_PATH, BASIC],
    ]);
  });

  it.each([{ token: TOKEN }, { access_token: TOKEN }, { token: TOKEN, access_token: TOKEN, expires_in: 300 }])(
    "Bearer: a token from the challenge's realm for its service and scope, with the credentials (%j)",
    async (answer) => {
      handle = withTokens(tokenAnswer(answer));
      expect(await manifestDigest(`${host}/team/app:v1`, auth)).toBe(DIGEST);
      expect(asked).toHaveLength(3);
      const tokenUrl = new URL(asked[1]?.url ?? "", `http://${host}`);
      expect(asked[1]?.method).toBe("GET");
      expect(tokenUrl.pathname).toBe("/token");
      expect(Object.fromEntries(tokenUrl.searchParams)).toEqual({ service: "test-registry", scope: "repository:team/app:pull" });
      expect(asked[1]?.headers.authorization).toBe(BASIC);
      expect(asked[2]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    },
  );

  it("Bearer without credentials: an anonymous token (public repositories)", async () => {
    handle = withTokens(tokenAnswer({ token: TOKEN }));
    expect(await manifestDigest(`${host}/team/app:v1`, undefined)).toBe(DIGEST);
    expect(asked[1]?.headers.authorization).toBeUndefined();
  });

  it("Bearer with no scope in the challenge: pull on the repository, as Docker asks", async () => {
    handle = (req, res) => {
      if (req.url?.startsWith("/token")) return tokenAnswer({ token: TOKEN })(req, res);
      guarded(() => `Bearer realm="http://${host}/token"`, () => `Bearer ${TOKEN}`)(req, res);
    };
    await manifestDigest(`${host}/team/app:v1`, auth);
    expect(Object.fromEntries(new URL(asked[1]?.url ?? "", `http://${host}`).searchParams)).toEqual({ scope: "repository:team/app:pull" });
  });
});

describe("manifestDigest's failures: what to do, retry or not, and never a secret", () => {
  it("404: not retryable, says the image is not in the registry", async () => {
    handle = status(404);
    const { error } = await failure(manifestDigest(`${host}/team/app@${DIGEST}`, auth));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe(`${host}/team/app@${DIGEST} is not in the registry: was it pushed, or deleted since?`);
  });

  it.each([
    ["Basic", () => 'Basic realm="test-registry"'],
    ["Bearer, refused by the token service", () => `Bearer realm="http://${host}/token",service="test-registry"`],
  ])("wrong credentials (%s): not retryable, names the registry and how to set them", async (_kind, challenge) => {
    handle = (req, res) => status(401, { "www-authenticate": challenge() })(req, res);
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, { username: "hoist", password: "wrong" }));
    expect(error).toBeInstanceOf(PermanentError);
    expect(classify(error).retryable).toBe(false);
    expect(error.message).toContain(`registry ${host} refused the credentials of user "hoist"`);
    expect(error.message).toContain(`hoist registry set ${host} --username USER --password-stdin`);
    expect(asked).toHaveLength(2);
  });

  it("403 with credentials: the same refusal", async () => {
    handle = guarded(() => 'Basic realm="r"', () => BASIC, status(403));
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth));
    expect(error.message).toContain(`registry ${host} refused the credentials`);
  });

  it("401 without credentials: says the registry needs some, and how to set them", async () => {
    handle = guarded(() => 'Basic realm="r"', () => BASIC);
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, undefined));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toBe(`registry ${host} needs credentials to read ${host}/team/app:v1: set them with \`hoist registry set ${host} --username USER --password-stdin\``);
    expect(asked).toHaveLength(1);
  });

  it("a registry that never answers: retryable once the deadline passes", async () => {
    handle = never;
    const { error, ms } = await failure(manifestDigest(`${host}/team/app:v1`, auth, { timeoutMs: 300 }));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toBe(`registry ${host} does not answer within 0.3 s: retry later`);
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(3000);
  });

  it("one deadline for the whole call: a token service that never answers", async () => {
    handle = withTokens(never);
    const { error, ms } = await failure(manifestDigest(`${host}/team/app:v1`, auth, { timeoutMs: 300 }));
    expect(error).toBeInstanceOf(RetryableError);
    expect(ms).toBeLessThan(3000);
  });

  it("a token answer that stalls midway: the deadline holds while reading it too", async () => {
    handle = withTokens((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"token":"');
    });
    const { error, ms } = await failure(manifestDigest(`${host}/team/app:v1`, auth, { timeoutMs: 300 }));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toContain("within 0.3 s");
    expect(ms).toBeLessThan(3000);
  });

  it.each([500, 502, 503])("%i: retryable, asked once", async (code) => {
    handle = status(code);
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toBe(`registry ${host} does not answer (HTTP ${code}): retry later`);
    expect(asked).toHaveLength(1);
  });

  it("429: retryable after its Retry-After", async () => {
    handle = status(429, { "retry-after": "7" });
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth));
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(7_000);
  });

  it("a token service that fails (503): retryable", async () => {
    handle = withTokens(status(503));
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toBe(`registry ${host} does not answer (its token service: HTTP 503): retry later`);
  });

  it("a registry that is not there (connection refused): retryable", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const gone = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const { error } = await failure(manifestDigest(`${gone}/team/app:v1`, auth));
    expect(error).toBeInstanceOf(RetryableError);
    expect(error.message).toBe(`registry ${gone} does not answer (ECONNREFUSED): retry later`);
  });

  it.each([
    ["declared too long", { "content-length": String(MAX_TOKEN_BYTES + 1) }],
    ["not declared (chunked)", {}],
  ])("a token answer over 64 KiB is refused, not read whole (%s)", async (_kind, headers) => {
    let wrote = 0;
    handle = withTokens((_req, res) => {
      res.writeHead(200, { "content-type": "application/json", ...headers });
      // Far more than the cap, written as long as the client reads.
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      const pump = () => {
        while (wrote < 4 * 1024 * 1024 && !res.destroyed) {
          wrote += chunk.length;
          if (!res.write(chunk)) return res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain("answered with more than 64 KiB, which is no token");
    expect(wrote).toBeLessThan(4 * 1024 * 1024);
  });

  it.each([
    ["not JSON", "not json at all"],
    ["no token in it", JSON.stringify({ details: "nothing here" })],
    ["an empty token", JSON.stringify({ token: "" })],
  ])("a token answer that is %s: permanent, says no token came", async (_kind, body) => {
    handle = withTokens((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    });
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain("answered without a token");
  });

  it.each([
    ["not http(s)", `file:///etc/passwd`, "a realm that is not an http(s) URL"],
    ["missing", undefined, "no realm"],
    ["plain http to another host, with credentials", "http://registry.example/token", "over plain HTTP"],
  ])("a realm %s: refused before anything is sent to it", async (_kind, realm, says) => {
    handle = (req, res) => status(401, { "www-authenticate": realm === undefined ? 'Bearer service="x"' : `Bearer realm="${realm}",service="x"` })(req, res);
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain(says);
    expect(asked).toHaveLength(1);
  });

  it("a 200 without Docker-Content-Digest for a tag: permanent, no digest made up", async () => {
    handle = status(200);
    const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain("without a Docker-Content-Digest");
  });

  it("neither the password nor the token is in any error, whatever the failure", async () => {
    // Each server echoes the secrets back where it can: a careless client would quote them.
    const echo = (code: number): Handler => (req, res) => {
      res.writeHead(code, { "content-type": "application/json", "www-authenticate": 'Basic realm="r"' });
      res.end(JSON.stringify({ got: req.headers.authorization, password: PASSWORD, token: TOKEN }));
    };
    const cases: Handler[] = [
      echo(401),
      guarded(() => 'Basic realm="r"', () => BASIC, echo(403)),
      guarded(() => 'Basic realm="r"', () => BASIC, echo(404)),
      guarded(() => 'Basic realm="r"', () => BASIC, echo(500)),
      guarded(() => 'Basic realm="r"', () => BASIC, echo(400)),
      withTokens(echo(401)),
      withTokens(echo(400)),
      withTokens(tokenAnswer({ tok: TOKEN, password: PASSWORD })),
      withTokens((_req, res) => res.end(`${PASSWORD} ${TOKEN} is not json`)),
      // A token that came, and that the registry refuses all the same.
      withTokens(tokenAnswer({ token: TOKEN }), echo(403)),
    ];
    for (const [i, next] of cases.entries()) {
      handle = next;
      const { error } = await failure(manifestDigest(`${host}/team/app:v1`, auth, { timeoutMs: 2_000 }));
      const said = everythingSaid(error);
      expect(said, `case ${i}: ${error.message}`).not.toContain(PASSWORD);
      expect(said, `case ${i}: ${error.message}`).not.toContain(TOKEN);
      expect(said).not.toContain(BASIC.slice("Basic ".length));
    }
  });
});

describe("registryLocation: where a reference's manifest is", () => {
  it.each([
    ["nginx", { host: "docker.io", origin: "https://registry-1.docker.io", repository: "library/nginx", reference: "latest" }],
    ["docker.io/team/app:1.2", { host: "docker.io", origin: "https://registry-1.docker.io", repository: "team/app", reference: "1.2" }],
    ["ghcr.io/octo-org/shop/web:v3", { host: "ghcr.io", origin: "https://ghcr.io", repository: "octo-org/shop/web", reference: "v3" }],
    [`012345678910.dkr.ecr.us-east-1.amazonaws.com/app@${DIGEST}`, { host: "012345678910.dkr.ecr.us-east-1.amazonaws.com", origin: "https://012345678910.dkr.ecr.us-east-1.amazonaws.com", repository: "app", reference: DIGEST }],
    ["127.0.0.1:5001/team/app:v1", { origin: "http://127.0.0.1:5001", display: "127.0.0.1:5001/team/app:v1" }],
    ["127.9.8.7:5000/app", { origin: "http://127.9.8.7:5000", reference: "latest" }],
    ["localhost:5000/app", { origin: "http://localhost:5000" }],
    ["[::1]:5000/app", { origin: "http://[::1]:5000" }],
    ["registry.local:5000/app", { origin: "https://registry.local:5000" }],
    [`registry.local/app:v1@${DIGEST}`, { reference: DIGEST, tag: "v1", digest: DIGEST, display: `registry.local/app@${DIGEST}` }],
  ])("%s", (ref, expected) => {
    expect(registryLocation(ref)).toMatchObject(expected);
  });

  it.each(["Team/App:v1", "host:5000/a:../../etc", "registry.local/app@sha256:xyz", "registry.local/app:-bad", "host:5000/a/../../b", "bad_host:5000/app"])(
    "%s: refused as bad input before it makes a URL",
    (ref) => {
      expect(() => registryLocation(ref)).toThrow(BadInputError);
    },
  );
});

describe("parseChallenges", () => {
  it.each([
    ['Basic realm="Registry Realm"', [{ scheme: "basic", params: { realm: "Registry Realm" } }]],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      [{ scheme: "bearer", params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/nginx:pull" } }],
    ],
    ['Basic realm="a", Bearer realm="https://t/token", error="insufficient_scope"', [{ scheme: "basic", params: { realm: "a" } }, { scheme: "bearer", params: { realm: "https://t/token", error: "insufficient_scope" } }]],
    ['BEARER Realm = "x\\"y" , Scope=repo', [{ scheme: "bearer", params: { realm: 'x"y', scope: "repo" } }]],
    ["Negotiate abc==, Basic realm=r", [{ scheme: "negotiate", params: { abc: "" } }, { scheme: "basic", params: { realm: "r" } }]],
    ["", []],
  ])("%s", (header, expected) => {
    expect(parseChallenges(header)).toEqual(expected);
  });
});
