import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerClientOptions } from "../../lib/engine/docker.ts";
import { Environment } from "../../lib/release/environment.ts";
import { probe } from "../../lib/release/health.ts";
import { releaseContext } from "../../lib/release/targets.ts";
import { ENGINE_SOCKET, requireDocker, uniqueSuffix } from "../support/docker.ts";
import { freePort } from "../support/haproxy.ts";
import { waitFor } from "../support/wait.ts";

// An environment whose engine is reached over tcp:// with mutual TLS, as Docker serves it
// (`dockerd --tlsverify`): here socat terminates TLS in front of the local engine's socket,
// checking client certificates against a CA made for the test.
const run = promisify(execFile);
const suffix = uniqueSuffix();
let dir: string;
let tlsProxy: ChildProcess | undefined;
let port: number;

async function openssl(...args: string[]): Promise<void> {
  try {
    await run("openssl", args, { cwd: dir });
  } catch (err) {
    throw new Error(`openssl ${args[0]} failed (is openssl installed? bash scripts/install.sh): ${(err as Error).message}`);
  }
}

/** A key and a certificate signed by the test CA. */
async function issue(name: string, subject: string, ext?: string): Promise<void> {
  await openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", subject);
  const extArgs = ext ? ["-extfile", await writeExt(name, ext)] : [];
  await openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "1", "-out", `${name}.pem`, ...extArgs);
}

async function writeExt(name: string, ext: string): Promise<string> {
  const file = join(dir, `${name}.ext`);
  await writeFile(file, `${ext}\n`);
  return file;
}

beforeAll(async () => {
  await requireDocker();
  dir = await mkdtemp(join(tmpdir(), "hoist-tls-"));
  await openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=hoist test CA");
  await issue("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth");
  await issue("client", "/CN=hoist", "extendedKeyUsage=clientAuth");
  // A certificate from another CA: the engine must refuse it.
  await openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "stranger-key.pem", "-out", "stranger.pem", "-days", "1", "-subj", "/CN=stranger");
  port = await freePort();
  tlsProxy = spawn(
    "socat",
    [
      `OPENSSL-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,cert=${join(dir, "server.pem")},key=${join(dir, "server-key.pem")},cafile=${join(dir, "ca.pem")},verify=1`,
      `UNIX-CONNECT:${ENGINE_SOCKET}`,
    ],
    { stdio: "ignore" },
  );
  tlsProxy.on("error", () => undefined);
  await waitFor("socat to listen with TLS (is socat installed? bash scripts/install.sh)", async () => {
    return new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1", () => (s.end(), resolve(true)));
      s.on("error", () => resolve(false));
    });
  }, 15_000, 100);
}, 60_000);

afterAll(async () => {
  tlsProxy?.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const tls = (name: string) => ({ ca: join(dir, "ca.pem"), cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) });

describe("an engine reached over tcp:// with TLS", () => {
  it("runs a release instance with the environment's client certificate", async () => {
    const env = Environment.parse({
      name: `tls-${suffix}`,
      engine: { endpoint: `tcp://127.0.0.1:${port}`, tls: tls("client") },
      router: { admin: "unix:///nonexistent.sock", backend: "app" },
    });
    const ctx = releaseContext(env, () => undefined);
    expect(await ctx.host.imageExists("hoist/busybox:latest")).toBe(true);
    const name = `hoist-tls-${suffix}-0`;
    try {
      const instance = await ctx.host.start({
        name,
        image: "hoist/busybox:latest",
        env: {},
        command: ["httpd", "-f", "-p", "8080", "-h", "/"],
        labels: { "hoist.env": env.name },
        port: 8080,
      });
      await waitFor(`${name} to answer`, async () => "status" in (await probe(instance.address, 8080, { path: "/", timeoutMs: 1_000 })), 30_000, 100);
    } finally {
      await ctx.host.remove(name);
    }
    expect(await ctx.host.inspect(name)).toBeUndefined();
  });

  it("refuses a client certificate from another CA, with an error naming the engine", async () => {
    const docker = new Dockerode(dockerClientOptions(`tcp://127.0.0.1:${port}`, tls("stranger")));
    await expect(docker.ping()).rejects.toThrow();
    const env = Environment.parse({
      name: `tls-bad-${suffix}`,
      engine: { endpoint: `tcp://127.0.0.1:${port}`, tls: tls("stranger") },
      router: { admin: "unix:///nonexistent.sock", backend: "app" },
    });
    await expect(releaseContext(env, () => undefined).host.imageExists("hoist/busybox:latest")).rejects.toThrow(/the TLS handshake with the Docker engine failed .*check the environment's engine.tls files/);
  });
});
