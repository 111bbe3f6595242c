import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { INTERPOLATION_LIMITS, interpolate, type Lookup } from "../../lib/compose/interpolate.ts";
import { readReleaseSpec } from "../../lib/compose/app.ts";
import { readYamlFile } from "../../lib/yaml/isolate.ts";
import { COMPOSE_FILE_LIMITS } from "../../lib/yaml/limits.ts";

// Cases follow the Compose Specification's interpolation chapter and compose-go's template tests
// (template/template_test.go, interpolation/interpolation_test.go); the results are Compose's.

const VARS: Record<string, string> = { SET: "value", EMPTY: "", OTHER: "other", BIG: "x".repeat(40_000) };
const lookupIn =
  (vars: Record<string, string>): Lookup =>
  (name) =>
    Object.hasOwn(vars, name) ? vars[name] : undefined;

/** One string value `v`, interpolated with VARS. */
function one(template: string) {
  return interpolate({ v: template }, lookupIn(VARS));
}

function value(template: string): string {
  const r = one(template);
  if (!r.ok) throw new Error(r.error);
  return (r.value as { v: string }).v;
}

function error(template: string): string {
  const r = one(template);
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value)}`);
  return r.error;
}

const unsetNames = (template: string) => {
  const r = one(template);
  return r.ok ? r.unset.map((u) => u.name) : [];
};

const REQUIRED = (name: string, reason = "msg") => ({ error: `v: required variable ${name} is missing a value: ${reason}` });

describe("each form, with the variable set, set and empty, and unset", () => {
  // `V` is replaced by SET, EMPTY, then UNSET. The `:` forms treat empty as unset; the others do not.
  it.each([
    ["$V", "value", "", "", true],
    ["${V}", "value", "", "", true],
    ["${V:-d}", "value", "d", "d", false],
    ["${V-d}", "value", "", "d", false],
    ["${V:+alt}", "alt", "", "", false],
    ["${V+alt}", "alt", "alt", "", false],
    ["${V:?msg}", "value", REQUIRED("EMPTY"), REQUIRED("UNSET"), false],
    ["${V?msg}", "value", "", REQUIRED("UNSET"), false],
  ] as const)("%s", (form, set, empty, unset, warns) => {
    for (const [name, expected] of [["SET", set], ["EMPTY", empty], ["UNSET", unset]] as const) {
      const template = `<${form.replace("V", name)}>`;
      if (typeof expected === "string") expect(value(template)).toBe(`<${expected}>`);
      else expect(error(template)).toBe(expected.error);
    }
    expect(unsetNames(form.replace("V", "UNSET"))).toEqual(warns ? ["UNSET"] : []);
  });

  it("a required variable's message is optional, as in Compose", () => {
    expect(error("${UNSET:?}")).toBe("v: required variable UNSET is missing a value");
    expect(error("not ok ${UNSET?}")).toBe("v: required variable UNSET is missing a value");
  });
});

describe("dollars and names", () => {
  it.each([
    ["$$", "$"],
    ["$${SET}", "${SET}"],
    ["$$SET", "$SET"],
    ["$$$SET", "$value"],
    ["a $ string", "a $ string"],
    ["^REGEX$", "^REGEX$"],
    ["$}", "$}"],
    ["$", "$"],
    ["costs $5", "costs $5"],
    ["$-", "$-"],
    ["$SET-bar", "value-bar"],
    ["$SET.bar", "value.bar"],
    ["$SET/$OTHER", "value/other"],
    ["${SET}bar", "valuebar"],
    ["$SETbar", ""],
    ["$SET_2", ""],
    ["$set", ""],
    ["${_}", ""],
  ])("%j is %j", (template, expected) => {
    expect(value(template)).toBe(expected);
  });

  it("an unbraced name runs as far as name characters do", () => {
    expect(unsetNames("$SETbar $SET_2 $set ${_}")).toEqual(["SETbar", "SET_2", "set", "_"]);
  });
});

describe("nested expressions", () => {
  it.each([
    ["${UNSET:-${SET}}", "value"],
    ["${UNSET:-$SET}", "value"],
    ["${UNSET:-${UNSET2:-c}}", "c"],
    ["${UNSET:-${EMPTY:-${UNSET2:-deep}}}", "deep"],
    ["${UNSET:-${EMPTY:-x}_test_${EMPTY:-y}}", "x_test_y"],
    ["${UNSET-${SET} ${SET}}", "value value"],
    ["${SET+$SET ${SET:+second}}", "value second"],
    ["+ok ${UNSET:-${EMPTY-defaultValue}}", "+ok "],
    ['${UNSET:-{"json":1}}', '{"json":1}'],
    ['${SET:-{"json":1}}', "value"],
    ["${UNSET:-a}}", "a}"],
    // compose-go never counts the character after a `{`, so here the first `}` does not close.
    ["${UNSET:-{}}x}", "{}}x"],
    ["${UNSET-x:-y?z}", "x:-y?z"],
    ["${UNSET:-/non:-alphanumeric}", "/non:-alphanumeric"],
    ["${UNSET:-x} and ${UNSET:-y}", "x and y"],
    ["${UNSET:-x}\n${UNSET:-y}", "x\ny"],
    ["{{{ ${SET:-foo} ${EMPTY:-DEFAULT} }}}", "{{{ value DEFAULT }}}"],
    ["${UNSET:-redis}.${SET:?}", "redis.value"],
  ])("%j is %j", (template, expected) => {
    expect(value(template)).toBe(expected);
  });

  it("a default is read only when used: no warning, no error from an unused one", () => {
    expect(unsetNames("${SET:-${UNSET}}")).toEqual([]);
    expect(unsetNames("${UNSET:+${UNSET},}B")).toEqual([]);
    expect(unsetNames("${UNSET:-${UNSET2}}")).toEqual(["UNSET2"]);
    expect(value("${SET:-${}}")).toBe("value");
    expect(error("${UNSET:-${}}")).toMatch(/^invalid interpolation format for v: /);
  });

  it("a required variable's message is interpolated", () => {
    expect(error("${UNSET:?set it, ${SET}}")).toBe(REQUIRED("UNSET", "set it, value").error);
    expect(error("${UNSET?bar-baz}")).toBe(REQUIRED("UNSET", "bar-baz").error);
  });
});

describe("invalid templates", () => {
  it.each(["${", "${}", "${ }", "${ SET }", "${ SET}", "${SET }", "${SET", "${SET:-x", "${SET!}", "${SET:x}", "${SET/a/b}", "${1A}", "ok ${", "${UNSET:-x\ny}"])(
    "%j is refused",
    (template) => {
      expect(error(template)).toBe(`invalid interpolation format for v: ${JSON.stringify(template)}; you may need to escape any $ with another $`);
    },
  );

  it("a long value is quoted from the mistake on", () => {
    expect(error(`${"x".repeat(100)} \${ bad }`)).toBe('invalid interpolation format for v: "...${ bad }"; you may need to escape any $ with another $');
  });
});

describe("the tree", () => {
  it("interpolates string values at any depth; keys, numbers, booleans and nulls are left alone", () => {
    const tree = { "${SET}": "${SET}", n: 1.5, b: true, z: null, list: ["$SET", 2, { deep: "${OTHER}" }] };
    const r = interpolate(tree, lookupIn(VARS));
    expect(r).toEqual({ ok: true, value: { "${SET}": "value", n: 1.5, b: true, z: null, list: ["value", 2, { deep: "other" }] }, unset: [] });
    expect(tree["${SET}"]).toBe("${SET}");
  });

  it("reports each unset variable once, where it is first used", () => {
    const r = interpolate({ a: "$UNSET", b: { c: ["${UNSET} $UNSET2", "${UNSET2}"] } }, lookupIn(VARS));
    expect(r.ok && r.unset).toEqual([
      { name: "UNSET", path: ["a"] },
      { name: "UNSET2", path: ["b", "c", 0] },
    ]);
  });

  it("names the value's path in an error", () => {
    const r = interpolate({ services: { web: { environment: ["A=1", "B=${REQ:?set REQ}"] } } }, lookupIn(VARS));
    expect(r).toEqual({ ok: false, path: ["services", "web", "environment", 1], error: "services.web.environment[1]: required variable REQ is missing a value: set REQ" });
  });

  it("keeps a key named __proto__ as a key", () => {
    const r = interpolate(JSON.parse('{"__proto__": "$SET"}'), lookupIn(VARS));
    expect(r.ok && Object.entries(r.value as object)).toEqual([["__proto__", "value"]]);
  });

  it("takes a bare string or a number as the whole document", () => {
    expect(interpolate("$SET", lookupIn(VARS))).toEqual({ ok: true, value: "value", unset: [] });
    expect(interpolate(7, lookupIn(VARS))).toEqual({ ok: true, value: 7, unset: [] });
    expect(interpolate("${", lookupIn(VARS))).toMatchObject({ ok: false, path: [], error: /^invalid interpolation format for \(file\)/ });
  });
});

describe("bounds (compose files come from untrusted repositories)", () => {
  const nested = (levels: number) => `${"${UNSET:-".repeat(levels)}x${"}".repeat(levels)}`;

  it(`nests expressions ${INTERPOLATION_LIMITS.maxDepth} deep, and refuses one more`, () => {
    expect(value(nested(16))).toBe("x");
    expect(error(nested(17))).toBe("v: variables nested more than 16 deep");
    expect(value(`\${UNSET:-{{{${nested(15)}}}}}`)).toBe("{{{x}}}");
  });

  it("refuses 10,000 levels at once, without running out of stack", () => {
    const start = performance.now();
    expect(error(nested(10_000))).toBe("v: variables nested more than 16 deep");
    expect(performance.now() - start).toBeLessThan(1_000);
  });

  it("refuses a value that would grow past 64 KiB, and stops there", () => {
    expect(value("$BIG").length).toBe(40_000);
    expect(error("${UNSET:-$BIG$BIG}")).toBe("v: longer than 65536 characters once interpolated");
    const start = performance.now();
    expect(error("$BIG".repeat(10_000))).toBe("v: longer than 65536 characters once interpolated");
    expect(performance.now() - start).toBeLessThan(1_000);
  });

  it("refuses a file whose values would grow past 8 MiB in all", () => {
    const r = interpolate(Array.from({ length: 300 }, () => "$BIG"), lookupIn(VARS));
    expect(r).toEqual({ ok: false, path: [209], error: "[209]: the file's values are longer than 8388608 characters in all once interpolated" });
  });

  it("reads a 64 KiB value full of expressions in linear time", () => {
    const start = performance.now();
    expect(value("${UNSET:-${EMPTY:-x}}".repeat(3_000))).toBe("x".repeat(3_000));
    expect(error("${UNSET:-{".repeat(6_000) + "}")).toMatch(/^invalid interpolation format for v: /);
    expect(performance.now() - start).toBeLessThan(1_000);
  });
});

describe("readReleaseSpec interpolates the whole file before reading it", () => {
  const lines = (...l: string[]) => l.join("\n") + "\n";
  const web = (...extra: string[]) => lines("services:", "  web:", "    image: shop", "    ports: ['8080']", ...extra);

  it("gives a default when the variable is unset, without a warning", async () => {
    const r = await readReleaseSpec(web("    environment: { URL: \"${DB_HOST:-db}:5432\" }"), "web");
    expect(r).toMatchObject({ ok: true, spec: { environment: { URL: "db:5432" } }, warnings: [] });
  });

  it("uses the variables given, and only their own keys", async () => {
    const r = await readReleaseSpec(web("    environment: { URL: \"${DB_HOST:-db}:5432\", C: \"${constructor:-none}\" }"), "web", undefined, { DB_HOST: "pg" });
    expect(r).toMatchObject({ ok: true, spec: { environment: { URL: "pg:5432", C: "none" } }, warnings: [] });
  });

  it("warns about an unset variable, naming its line, and reads it as blank", async () => {
    const r = await readReleaseSpec(lines("services:", "  web:", '    image: "shop:${TAG}"', "    ports: ['8080']"), "web");
    expect(r).toMatchObject({ ok: true, spec: { image: "shop:" }, warnings: ['docker-compose.yml:3: the "TAG" variable is not set: defaulting to a blank string'] });
  });

  it("warns once for a variable in an anchor merged into several services, at the anchor's line", async () => {
    const text = lines("x-env: &env", "  environment: { HOME_DIR: $HOME }", "services:", "  web:", "    <<: *env", "    image: shop", "    ports: ['8080']", "  worker:", "    <<: *env", "    image: shop");
    const r = await readReleaseSpec(text, "web", "compose.yml");
    expect(r.ok && r.warnings).toEqual(['compose.yml:2: the "HOME" variable is not set: defaulting to a blank string']);
  });

  it("fails on a required variable, naming its line", async () => {
    const r = await readReleaseSpec(web("    environment:", "      A: x", '      SECRET: "${REQ:?set REQ}"'), "web");
    expect(r).toMatchObject({ ok: false, error: "docker-compose.yml:7: services.web.environment.SECRET: required variable REQ is missing a value: set REQ" });
  });

  it("fails on a required variable anywhere in the file, as Compose does", async () => {
    const r = await readReleaseSpec(web("  db:", '    image: "postgres:${PG:?}"'), "web");
    expect(r).toMatchObject({ ok: false, error: "docker-compose.yml:6: services.db.image: required variable PG is missing a value" });
  });

  it("fails on an invalid template, naming its line", async () => {
    const r = await readReleaseSpec(lines("services:", "  web:", "    image: shop", "    ports:", "      - '${PORT'"), "web");
    expect(r).toMatchObject({ ok: false, error: 'docker-compose.yml:5: invalid interpolation format for services.web.ports[0]: "${PORT"; you may need to escape any $ with another $' });
  });

  it("reads numeric fields from the interpolated text", async () => {
    const r = await readReleaseSpec(web("    deploy: { replicas: '${REPLICAS:-2}' }"), "web");
    expect(r.ok && r.spec.replicas).toBe(2);
  });
});

describe("the compose corpus (/work/shared/corpus/compose)", () => {
  const dir = "/work/shared/corpus/compose";
  if (!existsSync(dir)) throw new Error(`${dir} is missing: it holds the real-world compose files this test reads`);
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));

  it("every file interpolates with no variables set, or is refused with a reason naming the value", async () => {
    expect(files.length).toBeGreaterThan(200);
    let ok = 0;
    const refused: string[] = [];
    for (const f of files) {
      const read = await readYamlFile(readFileSync(join(dir, f), "utf8"), { file: f, limits: COMPOSE_FILE_LIMITS, merge: true });
      if (!read.ok) continue;
      const r = interpolate(read.value, () => undefined);
      if (r.ok) {
        ok++;
        for (const u of r.unset) expect(u.name).toMatch(/^[_a-zA-Z][_a-zA-Z0-9]*$/);
      } else {
        expect(r.error).toMatch(/^(invalid interpolation format for \S+: ".*"; you may need to escape any \$ with another \$|\S+: required variable \w+ is missing a value(: .+)?)$/);
        expect(r.error.length).toBeLessThan(500);
        refused.push(f);
      }
    }
    // Files that require a variable (docker/compose's e2e TestUpImageID: "${ID:?ID variable must be set}") are refused.
    expect(refused.length).toBeLessThan(files.length / 20);
    expect(ok).toBeGreaterThan(files.length * 0.9);
  });
});
