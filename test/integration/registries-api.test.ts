import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiApp } from "../../lib/http/server.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import { registryAccess } from "../../lib/registry/access.ts";
import type { Services } from "../../lib/services.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";

/**
 * Registries through the API, stored in the table (dynalite): a login goes in with PUT and is
 * used by pushes and pulls, and no answer ever gives it back.
 */

const TOKEN = "api-token-for-tests-123";
const SECRET = "s3cret-registry-password-0123";
let servers: StartedServers;
let s: Services;
let app: Hono;

beforeAll(async () => {
  servers = await startAwsServers();
  s = await servicesOn(servers, { HOIST_API_TOKEN: TOKEN });
  app = apiApp(s);
});
afterAll(async () => {
  await servers.close();
});

const send = (method: string, path: string, body?: unknown) =>
  app.request(path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });

describe("/api/registries", () => {
  it("registers a login, lists and shows it without the password, uses it, replaces and removes it", async () => {
    const put = await send("PUT", "/api/registries/registry.example.com:5000", { username: "ci", password: SECRET });
    expect(put.status).toBe(200);
    const answers = [await put.text()];
    const list = await send("GET", "/api/registries");
    answers.push(await list.text());
    const one = await send("GET", "/api/registries/registry.example.com:5000");
    answers.push(await one.text());
    expect(JSON.parse(answers[2]!)).toMatchObject({ host: "registry.example.com:5000", auth: "basic", username: "ci" });
    expect(JSON.parse(answers[1]!)).toMatchObject({ registries: [{ host: "registry.example.com:5000" }] });
    for (const answer of answers) expect(answer).not.toContain(SECRET);

    // What pushes and pulls get: the stored login, for that host only.
    const access = registryAccess(s.registries);
    expect(await access.login("registry.example.com:5000")).toEqual({ username: "ci", password: SECRET, serveraddress: "registry.example.com:5000" });
    expect(await access.login("other.example.com")).toBeUndefined();

    await send("PUT", "/api/registries/registry.example.com:5000", { username: "ci", password: `${SECRET}-2` });
    expect((await access.login("registry.example.com:5000"))?.password).toBe(`${SECRET}-2`);

    expect((await send("DELETE", "/api/registries/registry.example.com:5000")).status).toBe(200);
    expect((await send("GET", "/api/registries/registry.example.com:5000")).status).toBe(404);
    expect(await access.login("registry.example.com:5000")).toBeUndefined();
    expect((await send("DELETE", "/api/registries/registry.example.com:5000")).status).toBe(404);
  });

  it("registers an Amazon ECR registry by region; its account comes from the host", async () => {
    const host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    const put = await send("PUT", `/api/registries/${host}`, { ecr: { region: "eu-west-1" } });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ host, auth: "ecr", ecr: { region: "eu-west-1", registryId: "123456789012" } });
  });

  it.each([
    ["a scheme in the host", "PUT", "/api/registries/https:%2F%2Fghcr.io", { username: "u", password: "p" }, 400, /host: is a registry host/],
    ["no password", "PUT", "/api/registries/ghcr.io", { username: "u" }, 400, /body/],
    ["an unknown field", "PUT", "/api/registries/ghcr.io", { username: "u", password: "p", email: "x@y" }, 400, /body/],
    ["a body that is not JSON", "PUT", "/api/registries/ghcr.io", "{", 400, /not JSON/],
    ["ecr on a host that is not ECR's", "PUT", "/api/registries/ghcr.io", { ecr: { region: "eu-west-1" } }, 400, /ecr applies to an Amazon ECR host/],
    ["ecr in another region than its host's", "PUT", "/api/registries/123456789012.dkr.ecr.us-east-1.amazonaws.com", { ecr: { region: "eu-west-1" } }, 400, /is in region us-east-1/],
    ["one of Docker Hub's other names", "PUT", "/api/registries/index.docker.io", { username: "u", password: "p" }, 400, /register Docker Hub as "docker\.io"/],
    ["a port out of range", "PUT", "/api/registries/reg.example.com:70000", { username: "u", password: "p" }, 400, /port outside 1-65535/],
    ["a host no registry can have", "GET", `/api/registries/${"a".repeat(2_000)}`, undefined, 404, /no registry a+…/],
    ["an unknown registry", "GET", "/api/registries/nothing.example.com", undefined, 404, /no registry nothing\.example\.com/],
  ])("answers %s with a clear error and stores nothing", async (_what, method, path, body, status, message) => {
    const before = await s.registries.listRegistries();
    const res = await send(method, path, body);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
    expect(await s.registries.listRegistries()).toEqual(before);
  });
});
