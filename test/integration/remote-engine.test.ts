import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerClientOptions } from "../../lib/engine/docker.ts";
import { Environment } from "../../lib/release/environment.ts";
import { httpProbe } from "../../lib/release/http-probe.ts";
import { releaseContext } from "../../lib/release/targets.ts";
import { githubPush } from "../../lib/demo/payloads.ts";
import { createSampleApp } from "../../lib/demo/sample-app.ts";
import { manifestDigest } from "../../lib/registry/client.ts";
import { ENGINE_SOCKET, requireDocker, uniqueSuffix } from "../support/docker.ts";
import { AUTH_REGISTRY, authRegistryCredentials } from "../support/hosts.ts";
import { API_TOKEN, finalRun, sendGitHubPush, startRuntime } from "../support/local.ts";
import { freePort } from "../support/haproxy.ts";
import { waitFor } from "../support/wait.ts";

// Environments whose engine is remote, reached the two ways Docker offers besides a local
// socket, each in front of the local engine:
// - tcp:// with mutual TLS (as `dockerd --tlsverify` serves it): socat terminates TLS, checking
//   client certificates against a CA made for the test;
// - ssh://, where the engine host runs `docker system dial-stdio` per connection: a private sshd
//   that accepts one key.
const run = promisify(execFile);
const suffix = uniqueSuffix();
const INSTALL = "bash scripts/install.sh";
let dir: string;
const servers: ChildProcess[] = [];

async function tool(bin: string, args: string[]): Promise<string> {
  try {
    return (await run(bin, args, { cwd: dir })).stdout;
  } catch (err) {
    throw new Error(`${bin} ${args[0]} failed (is it installed? ${INSTALL}): ${(err as Error).message}`);
  }
}

function listening(port: number, what: string): Promise<void> {
  return waitFor(`${what} to listen on 127.0.0.1:${port}`, () =>
    new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1", () => (s.end(), resolve(true)));
      s.on("error", () => resolve(false));
    }), 15_000, 100).then(() => undefined);
}

function serve(bin: string, args: string[]): void {
  const child = spawn(bin, args, { stdio: "ignore" });
  child.on("error", () => undefined); // a missing binary shows as nothing listening, with what to install
  servers.push(child);
}

beforeAll(async () => {
  await requireDocker();
  dir = await mkdtemp(join(tmpdir(), "hoist-remote-"));
}, 60_000);

afterAll(async () => {
  for (const s of servers) s.kill();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts a test instance through the environment's engine, checks it answers, removes it. */
async function runsAnInstance(env: Environment): Promise<void> {
  const ctx = releaseContext(env, () => undefined);
  await expect(ctx.host.ensureImage("hoist/busybox:latest")).resolves.toBeUndefined();
  const name = `hoist-${env.name}-0`;
  try {
    const instance = await ctx.host.start({
      name,
      image: "hoist/busybox:latest",
      env: {},
      command: ["httpd", "-f", "-p", "8080", "-h", "/"],
      labels: { "hoist.env": env.name },
      port: 8080,
    });
    await waitFor(`${name} to answer`, async () => "status" in (await httpProbe.get(instance.address, 8080, { path: "/", timeoutMs: 1_000 })), 30_000, 100);
  } finally {
    await ctx.host.remove(name);
  }
  expect(await ctx.host.inspect(name)).toBeUndefined();
}

const environment = (name: string, engine: object) => Environment.parse({ name: `${name}-${suffix}`, engine, router: { admin: "unix:///unused.sock", backend: "app" } });

describe("an engine reached over tcp:// with TLS", () => {
  let port: number;
  const tls = (name: string) => ({ ca: join(dir, "ca.pem"), cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) });

  /** A key and a certificate signed by the test CA. */
  async function issue(name: string, subject: string, ext: string): Promise<void> {
    await tool("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", subject]);
    await writeFile(join(dir, `${name}.ext`), `${ext}\n`);
    await tool("openssl", ["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "1", "-out", `${name}.pem`, "-extfile", `${name}.ext`]);
  }

  beforeAll(async () => {
    await tool("openssl", ["req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=hoist test CA"]);
    await issue("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth");
    await issue("client", "/CN=hoist", "extendedKeyUsage=clientAuth");
    // A certificate from another CA: the engine must refuse it.
    await tool("openssl", ["req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "stranger-key.pem", "-out", "stranger.pem", "-days", "1", "-subj", "/CN=stranger"]);
    port = await freePort();
    const [server, key, ca] = [join(dir, "server.pem"), join(dir, "server-key.pem"), join(dir, "ca.pem")];
    serve("socat", [`OPENSSL-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,cert=${server},key=${key},cafile=${ca},verify=1`, `UNIX-CONNECT:${ENGINE_SOCKET}`]);
    await listening(port, `socat with TLS (is socat installed? ${INSTALL})`);
  }, 60_000);

  it("runs a release instance with the environment's client certificate", async () => {
    await runsAnInstance(environment("tls", { endpoint: `tcp://127.0.0.1:${port}`, tls: tls("client") }));
  });

  it("is a builder: a push builds, tests and pushes there, with the registry's login (HOIST_BUILD_ENGINE)", async () => {
    const login = await authRegistryCredentials();
    const image = `remote-builder-${suffix}`;
    const rt = await startRuntime({
      HOIST_BUILD_ENGINE: `tcp://127.0.0.1:${port}`,
      HOIST_BUILD_ENGINE_TLS_CA: tls("client").ca,
      HOIST_BUILD_ENGINE_TLS_CERT: tls("client").cert,
      HOIST_BUILD_ENGINE_TLS_KEY: tls("client").key,
      HOIST_REGISTRY: AUTH_REGISTRY,
    });
    try {
      const put = await fetch(`${rt.url}/api/registries/${AUTH_REGISTRY}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(login),
      });
      expect(put.status).toBe(200);
      const app = await createSampleApp(await mkdtemp(join(tmpdir(), "hoist-builder-app-")), { image });
      const [id] = await sendGitHubPush(rt.url, githubPush({ path: app.path, sha: app.sha, ref: "refs/heads/main", fullName: "acme/remote-builder" }));
      const run = await finalRun(rt.url, id!, 180_000);
      expect(run.status, run.error).toBe("succeeded");
      expect(run.stages.map((s) => s.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
      const pushed = run.stages[2]?.output;
      expect(pushed?.image).toBe(`${AUTH_REGISTRY}/${image}:${app.sha}`);
      expect(await manifestDigest(pushed?.image ?? "", login)).toBe(pushed?.digest);
    } finally {
      await rt.stop();
    }
  }, 240_000);

  it("refuses a client certificate from another CA, with an error that says what to check", async () => {
    await expect(new Dockerode(dockerClientOptions({ endpoint: `tcp://127.0.0.1:${port}`, tls: tls("stranger") })).ping()).rejects.toThrow();
    const env = environment("tls-bad", { endpoint: `tcp://127.0.0.1:${port}`, tls: tls("stranger") });
    await expect(releaseContext(env, () => undefined).host.ensureImage("hoist/busybox:latest")).rejects.toThrow(
      /the TLS handshake with the Docker engine failed .*check the environment's engine.tls files/,
    );
  });
});

describe("an engine reached over ssh://", () => {
  let port: number;
  let hostKey: string;
  const user = userInfo().username;

  beforeAll(async () => {
    if (!existsSync("/usr/sbin/sshd")) throw new Error(`sshd is not installed: ${INSTALL} (apt-get install openssh-server)`);
    await tool("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", "host_key"]);
    await tool("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", "client_key"]);
    await tool("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", "stranger_key"]);
    await writeFile(join(dir, "authorized_keys"), await readFile(join(dir, "client_key.pub")));
    await chmod(join(dir, "authorized_keys"), 0o600);
    // `ssh-keygen -l` prints "256 SHA256:... comment (ED25519)".
    hostKey = (await tool("ssh-keygen", ["-l", "-f", "host_key.pub"])).split(" ")[1]!;
    port = await freePort();
    await mkdir("/run/sshd", { recursive: true }); // sshd's privilege separation directory
    const config = join(dir, "sshd_config");
    await writeFile(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(dir, "host_key")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        `AllowUsers ${user}`,
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        `PidFile ${join(dir, "sshd.pid")}`,
        "",
      ].join("\n"),
    );
    serve("/usr/sbin/sshd", ["-D", "-e", "-f", config]);
    await listening(port, "sshd");
  }, 60_000);

  it("runs a release instance through the engine host's `docker system dial-stdio`, having checked its host key", async () => {
    await runsAnInstance(environment("ssh", { endpoint: `ssh://${user}@127.0.0.1:${port}`, ssh: { key: join(dir, "client_key"), hostKey } }));
  });

  it("refuses a host whose key is not the one registered, and a client key the host does not know", async () => {
    const wrongHost = environment("ssh-host", { endpoint: `ssh://${user}@127.0.0.1:${port}`, ssh: { key: join(dir, "client_key"), hostKey: `SHA256:${"A".repeat(43)}` } });
    await expect(releaseContext(wrongHost, () => undefined).host.ensureImage("hoist/busybox:latest")).rejects.toThrow(/SSH connection to the engine host was refused .*engine.ssh.hostKey/);
    const wrongKey = environment("ssh-key", { endpoint: `ssh://${user}@127.0.0.1:${port}`, ssh: { key: join(dir, "stranger_key"), hostKey } });
    await expect(releaseContext(wrongKey, () => undefined).host.ensureImage("hoist/busybox:latest")).rejects.toThrow(/SSH connection to the engine host was refused/);
  });

  it("will not register an ssh:// engine without the host key to check", () => {
    const parsed = Environment.safeParse({ name: "ssh-open", engine: { endpoint: "ssh://root@10.0.0.5" }, router: { admin: "unix:///x.sock", backend: "app" } });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual(["engine.ssh: an ssh:// engine needs ssh: {key, hostKey}: the private key's path and the host key's fingerprint"]);
  });
});
