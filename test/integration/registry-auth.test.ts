import type Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerEngine } from "../../lib/engine/docker.ts";
import { NotFoundError, PermanentError } from "../../lib/errors.ts";
import type { RegistryLogin } from "../../lib/registry/auth.ts";
import { manifestDigest } from "../../lib/registry/client.ts";
import { requireDocker, uniqueSuffix } from "../support/docker.ts";
import { AUTH_REGISTRY, authRegistryCredentials, requireAuthRegistry, requireEngine2 } from "../support/hosts.ts";

/**
 * The registry client against the registry with a login that scripts/services.sh starts: an
 * image pushed there with credentials by the main engine, looked up by tag and by digest,
 * then pulled by digest by the second engine, as a release on another host would.
 */
const repo = `${AUTH_REGISTRY}/hoist-test/registry-auth-${uniqueSuffix()}`;
const tagged = `${repo}:v1`;
let auth: RegistryLogin;
let engine2: Dockerode;
let pushed: string;

beforeAll(async () => {
  const docker = await requireDocker();
  await requireAuthRegistry();
  engine2 = await requireEngine2();
  auth = await authRegistryCredentials();
  const engine = new DockerEngine({ docker });
  pushed = (await engine.push("hoist/busybox:latest", tagged, { auth: { ...auth, serveraddress: AUTH_REGISTRY } })).digest;
  await docker.getImage(tagged).remove();
}, 120_000);

afterAll(async () => {
  if (!pushed) return;
  await engine2.getImage(`${repo}@${pushed}`).remove().catch(() => undefined); // absent when its test failed first
  const basic = Buffer.from(`${auth.username}:${auth.password}`).toString("base64");
  await fetch(`http://${AUTH_REGISTRY}/v2/${repo.slice(AUTH_REGISTRY.length + 1)}/manifests/${pushed}`, { method: "DELETE", headers: { authorization: `Basic ${basic}` } });
});

describe("manifestDigest against a registry that requires a login", () => {
  it("by tag: the digest the push reported", async () => {
    expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await manifestDigest(tagged, auth)).toBe(pushed);
  });

  it("by digest: confirmed and returned", async () => {
    expect(await manifestDigest(`${repo}@${pushed}`, auth)).toBe(pushed);
  });

  it("a wrong password: refused, with how to set the credentials, and the password in no message", async () => {
    const wrong = { username: auth.username, password: `wrong-${uniqueSuffix()}` };
    const error = await manifestDigest(tagged, wrong).then(() => undefined, (e: Error) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error?.message).toContain(`registry ${AUTH_REGISTRY} refused the credentials of user "${auth.username}"`);
    expect(error?.message).toContain(`hoist registry set ${AUTH_REGISTRY} --username USER --password-stdin`);
    expect(error?.message).not.toContain(wrong.password);
  });

  it("no credentials: says the registry needs some", async () => {
    const error = await manifestDigest(tagged, undefined).then(() => undefined, (e: Error) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error?.message).toContain(`registry ${AUTH_REGISTRY} needs credentials to read ${tagged}`);
  });

  it("an unknown digest: not in the registry", async () => {
    const unknown = `sha256:${"0".repeat(64)}`;
    const error = await manifestDigest(`${repo}@${unknown}`, auth).then(() => undefined, (e: Error) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error?.message).toBe(`${repo}@${unknown} is not in the registry: was it pushed, or deleted since?`);
  });

  it("the second engine pulls it by digest with the credentials, and not without", async () => {
    const pull = (authconfig?: Dockerode.AuthConfig) =>
      new Promise<void>((resolve, reject) => {
        engine2.pull(`${repo}@${pushed}`, authconfig ? { authconfig } : {}, (err: Error | null, stream?: NodeJS.ReadableStream) => {
          if (err || !stream) return reject(err ?? new Error("no pull stream"));
          engine2.modem.followProgress(stream, (done: Error | null) => (done ? reject(done) : resolve()));
        });
      });
    await expect(pull()).rejects.toThrow(/no basic auth credentials|unauthorized|401/i);
    await pull({ ...auth, serveraddress: AUTH_REGISTRY });
    const image = await engine2.getImage(`${repo}@${pushed}`).inspect();
    expect(image.RepoDigests).toContain(`${repo}@${pushed}`);
  });
});
