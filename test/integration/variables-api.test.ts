import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiApp } from "../../lib/http/server.ts";
import type { StartedServers } from "../../lib/local/servers.mjs";
import { MAX_VARIABLES } from "../../lib/release/variables.ts";
import type { Services } from "../../lib/services.ts";
import { servicesOn, startAwsServers } from "../support/aws.ts";
import { API_TOKEN, hoistCli } from "../support/local.ts";

/**
 * An environment's variables through the API and the CLI, stored in the table (dynalite): a
 * secret goes in with PUT and no answer or CLI output gives it back; a release reads it.
 */

const SECRET = "s3cret-db-password-0123";
let servers: StartedServers;
let s: Services;
let app: Hono;

beforeAll(async () => {
  servers = await startAwsServers();
  s = await servicesOn(servers, { HOIST_API_TOKEN: API_TOKEN });
  app = apiApp(s);
  for (const name of ["staging", "full", "cli"])
    await s.releases.putEnvironment({
      name,
      engine: { endpoint: "unix:///var/run/docker.sock" },
      mode: "docker",
      router: { admin: "tcp://127.0.0.1:9999", backend: "web" },
      protection: {},
      allow: { hostPaths: false, privileged: false },
    });
});
afterAll(async () => {
  await servers.close();
});

const send = (method: string, path: string, body?: unknown) =>
  app.request(path, {
    method,
    headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
const vars = (env: string) => `/api/environments/${env}/variables`;

describe("/api/environments/:env/variables", () => {
  it("sets, lists and removes variables; a secret's value never comes back, a release gets it", async () => {
    const answers: string[] = [];
    const plain = await send("PUT", `${vars("staging")}/LOG_LEVEL`, { value: "debug" });
    expect(plain.status).toBe(200);
    answers.push(await plain.text());
    expect(JSON.parse(answers[0]!)).toMatchObject({ name: "LOG_LEVEL", secret: false, value: "debug" });

    const secret = await send("PUT", `${vars("staging")}/DB_PASSWORD`, { value: SECRET, secret: true });
    expect(secret.status).toBe(200);
    answers.push(await secret.text());
    expect(JSON.parse(answers[1]!)).toEqual({ name: "DB_PASSWORD", secret: true, version: expect.any(String), updatedAt: expect.any(Number) });

    const list = await send("GET", vars("staging"));
    expect(list.status).toBe(200);
    answers.push(await list.text());
    expect(JSON.parse(answers[2]!)).toEqual({
      variables: [
        { name: "DB_PASSWORD", secret: true, version: expect.any(String), updatedAt: expect.any(Number) },
        { name: "LOG_LEVEL", secret: false, value: "debug", version: expect.any(String), updatedAt: expect.any(Number) },
      ],
    });

    // A secret set again without `secret` would show and be interpolated from then on: refused.
    const downgrade = await send("PUT", `${vars("staging")}/DB_PASSWORD`, { value: "now-plain" });
    expect(downgrade.status).toBe(409);
    answers.push(await downgrade.text());
    expect(JSON.parse(answers[3]!).error).toMatch(/DB_PASSWORD is a secret in staging: set it again as a secret, or remove it first/);

    const del = await send("DELETE", `${vars("staging")}/DB_PASSWORD`);
    expect(del.status).toBe(200);
    answers.push(await del.text());
    for (const answer of answers) expect(answer).not.toContain(SECRET);

    // What a release gets: every value, the secret's too, until it is removed.
    await send("PUT", `${vars("staging")}/DB_PASSWORD`, { value: SECRET, secret: true });
    expect(await s.variables.variableValues("staging")).toEqual([
      { name: "DB_PASSWORD", value: SECRET, secret: true, version: expect.any(String) },
      { name: "LOG_LEVEL", value: "debug", secret: false, version: expect.any(String) },
    ]);
    expect((await send("DELETE", `${vars("staging")}/DB_PASSWORD`)).status).toBe(200);
    expect((await send("DELETE", `${vars("staging")}/DB_PASSWORD`)).status).toBe(404);
    expect((await s.variables.variableValues("staging")).map((v) => v.name)).toEqual(["LOG_LEVEL"]);
  });

  it("gives each write a new version, the same value too", async () => {
    const versions = new Set<string>();
    for (const value of ["a", "a", "b"]) {
      const res = await send("PUT", `${vars("staging")}/TOKEN`, { value, secret: true });
      versions.add(((await res.json()) as { version: string }).version);
    }
    expect(versions.size).toBe(3);
    for (const v of versions) expect(v).toMatch(/^[0-9a-z]{26}$/);
    const [stored] = (await s.variables.variableValues("staging")).filter((v) => v.name === "TOKEN");
    expect(versions.has(stored!.version)).toBe(true);
  });

  it.each([
    ["an unknown environment", "PUT", `${vars("nowhere")}/A`, { value: "x" }, 404, /no environment nowhere: register it with PUT \/api\/environments\/nowhere/],
    ["an unknown environment's list", "GET", vars("nowhere"), undefined, 404, /no environment nowhere/],
    ["a name no environment can have", "PUT", `${vars("Not_An_Env")}/A`, { value: "x" }, 404, /no environment Not_An_Env: names are lower-case/],
    ["a variable name starting with a digit", "PUT", `${vars("staging")}/1ABC`, { value: "x" }, 400, /name: is a variable name: letters, digits and _, not starting with a digit/],
    ["a variable name with a dash", "PUT", `${vars("staging")}/MY-VAR`, { value: "x" }, 400, /name: is a variable name/],
    ["a variable name over 128 characters", "PUT", `${vars("staging")}/${"A".repeat(129)}`, { value: "x" }, 400, /name: is a variable name/],
    ["no value", "PUT", `${vars("staging")}/A`, { secret: true }, 400, /value/],
    ["a value that is not a string", "PUT", `${vars("staging")}/A`, { value: 5 }, 400, /value/],
    ["an unknown field", "PUT", `${vars("staging")}/A`, { value: "x", hidden: true }, 400, /body/],
    ["a body that is not JSON", "PUT", `${vars("staging")}/A`, "{", 400, /not JSON/],
    ["a body over the API's limit", "PUT", `${vars("staging")}/A`, { value: "x".repeat(70_000) }, 413, /body over 64 KiB/],
    ["an absent variable", "DELETE", `${vars("staging")}/ABSENT`, undefined, 404, /no variable ABSENT in staging/],
    ["a name no variable can have", "DELETE", `${vars("staging")}/no-such-name`, undefined, 404, /no variable no-such-name in staging/],
  ])("answers %s with a clear error and writes nothing", async (_what, method, path, body, status, message) => {
    const before = await s.variables.variableValues("staging");
    const res = await send(method, path, body);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
    expect(await s.variables.variableValues("staging")).toEqual(before);
    expect(await s.variables.variableValues("nowhere")).toEqual([]);
  });

  it(`holds at most ${MAX_VARIABLES} variables an environment, and still replaces one at the limit`, async () => {
    // The real limit, not a smaller one injected: 500 puts take about 3 s on dynalite.
    for (let i = 0; i < MAX_VARIABLES; i++) await s.variables.putVariable("full", `V${i}`, String(i), i % 2 === 0);
    const over = await send("PUT", `${vars("full")}/ONE_MORE`, { value: "x" });
    expect(over.status).toBe(409);
    expect(((await over.json()) as { error: string }).error).toBe(
      `full has ${MAX_VARIABLES} variables, the most an environment holds (${MAX_VARIABLES}): remove some with \`hoist env vars rm full NAME\` before adding ONE_MORE`,
    );
    expect((await s.variables.listVariables("full")).length).toBe(MAX_VARIABLES);
    expect((await send("PUT", `${vars("full")}/V1`, { value: "replaced" })).status).toBe(200);
    expect((await send("DELETE", `${vars("full")}/V3`)).status).toBe(200);
    expect((await send("PUT", `${vars("full")}/ONE_MORE`, { value: "x" })).status).toBe(200);
    expect((await s.variables.listVariables("full")).length).toBe(MAX_VARIABLES);
  });
});

describe("hoist env vars", () => {
  let server: ServerType;
  let url: string;
  beforeAll(async () => {
    server = await new Promise<ServerType>((resolve) => {
      const started = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(started));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("sets several, a secret from standard input, lists them without the secret and removes one", async () => {
    const set = await hoistCli(url, ["env", "vars", "set", "cli", "LOG_LEVEL=info", "GREETING=hello=world"]);
    expect(set.code, set.out).toBe(0);
    expect(set.out).toMatch(/LOG_LEVEL\s+no\s+info/);

    const secret = await hoistCli(url, ["env", "vars", "set", "cli", "DB_PASSWORD", "--secret", "--value-stdin"], `${SECRET}\n`);
    expect(secret.code, secret.out).toBe(0);
    expect(secret.out).toMatch(/DB_PASSWORD\s+yes\s+\(secret\)/);
    expect((await s.variables.variableValues("cli")).find((v) => v.name === "DB_PASSWORD")).toMatchObject({ value: SECRET, secret: true });

    const list = await hoistCli(url, ["env", "vars", "list", "cli"]);
    expect(list.code, list.out).toBe(0);
    expect(list.out.split("\n").filter(Boolean)).toEqual([
      expect.stringMatching(/^NAME\s+SECRET\s+VALUE$/),
      expect.stringMatching(/^DB_PASSWORD\s+yes\s+\(secret\)$/),
      expect.stringMatching(/^GREETING\s+no\s+hello=world$/),
      expect.stringMatching(/^LOG_LEVEL\s+no\s+info$/),
    ]);
    const json = await hoistCli(url, ["env", "vars", "list", "cli", "--json"]);
    expect(json.code, json.out).toBe(0);
    expect((JSON.parse(json.out) as { name: string }[]).map((v) => v.name)).toEqual(["DB_PASSWORD", "GREETING", "LOG_LEVEL"]);
    for (const out of [set.out, secret.out, list.out, json.out]) expect(out).not.toContain(SECRET);

    const rm = await hoistCli(url, ["env", "vars", "rm", "cli", "GREETING"]);
    expect(rm.code, rm.out).toBe(0);
    expect(rm.out).toContain("variable GREETING removed from cli");
    const again = await hoistCli(url, ["env", "vars", "rm", "cli", "GREETING"]);
    expect(again.code).toBe(1);
    expect(again.out).toContain("no variable GREETING in cli: list them with `hoist env vars list cli`");
  });

  it.each([
    ["a bad name among good ones", ["set", "cli", "GOOD=1", "1BAD=2"], "", /1BAD is a variable name/],
    ["an argument without =", ["set", "cli", "GOOD=1", "LONELY"], "", /LONELY: give KEY=VALUE/],
    ["--value-stdin with two keys", ["set", "cli", "A", "B", "--value-stdin"], "x", /--value-stdin sets one variable/],
    ["--value-stdin with nothing piped", ["set", "cli", "A", "--secret", "--value-stdin"], "", /standard input was empty/],
    ["an unknown environment", ["set", "nowhere", "A=1"], "", /no environment nowhere: list them with `hoist env list`/],
  ])("refuses %s and sets nothing", async (_what, args, stdin, message) => {
    const before = await s.variables.variableValues("cli");
    const res = await hoistCli(url, ["env", "vars", ...args], stdin);
    expect(res.code).not.toBe(0);
    expect(res.out).toMatch(message);
    expect(await s.variables.variableValues("cli")).toEqual(before);
  });
});
