import fc from "fast-check";
import { stringify } from "yaml";

// Generators of untrusted pipeline and compose files for the fuzz test: deep nesting, many keys,
// aliases, huge scalars, wrong types, random bytes, mutations of valid files.

const HOIST = `pipelines:
  main:
    on: { push: { branches: [main] }, manual: true }
    stages:
      - build: { image: shop, args: { A: 1 } }
      - test: { run: "npm test", timeout: 60 }
      - push: {}
      - deploy: { environment: staging, service: web }
`;

const COMPOSE = `x-defaults: &defaults
  restart: unless-stopped
  environment: { A: "1" }
services:
  web:
    <<: *defaults
    image: shop
    ports: ["80:8080"]
    healthcheck: { test: ["CMD", "true"], interval: 5s }
    deploy: { replicas: 2, update_config: { order: start-first } }
    x-hoist: { strategy: canary, steps: [10, 100], health: { path: /up } }
`;

const open = fc.constantFrom("[", "{a: ", "- ", "? ", "{", "[[", "a:\n  ");
export const deep = fc.tuple(open, fc.integer({ min: 1, max: 400 }), fc.boolean()).map(([o, n, closed]) => `pipelines: ${o.repeat(n)}x${closed ? (o.includes("{") ? "}" : "]").repeat(n) : ""}\n`);
const indented = fc.integer({ min: 1, max: 200 }).map((n) => Array.from({ length: n }, (_, i) => `${" ".repeat(i)}k${i}:`).join("\n") + " 1\n");

const manyKeys = fc.tuple(fc.integer({ min: 0, max: 2_000 }), fc.boolean(), fc.constantFrom("hoist", "compose")).map(([n, dup, where]) => {
  const keys = Array.from({ length: n }, (_, i) => `      K${i}: v\n`).join("") + (dup && n > 0 ? "      K0: again\n" : "");
  return where === "hoist"
    ? `pipelines:\n  m:\n    on: { manual: true }\n    stages:\n      - build:\n          args:\n${keys.replace(/^ {6}/gm, "            ")}`
    : `services:\n  web:\n    ports: ["80"]\n    environment:\n${keys}`;
});

const laughs = fc.tuple(fc.integer({ min: 1, max: 14 }), fc.integer({ min: 2, max: 12 }), fc.constantFrom("list", "merge")).map(([levels, width, kind]) => {
  const out = ["x0: &x0 { a: lol }"];
  for (let i = 1; i <= levels; i++) {
    const refs = Array.from({ length: width }, () => `*x${i - 1}`).join(", ");
    out.push(kind === "list" ? `x${i}: &x${i} [${refs}]` : `x${i}: &x${i} { <<: [${refs}], k${i}: [${refs}] }`);
  }
  return `${out.join("\n")}\nservices:\n  web: { ports: ["80"], environment: *x${levels} }\npipelines: *x${levels}\n`;
});
const badAlias = fc.constantFrom("pipelines: *nowhere\n", "a: &a [*a]\n", "services:\n  web: *web\n", "a: &a\n  <<: *a\n", "<<: *x\n", "a: &a 1\nb: { <<: *a }\n");

const hugeScalar = fc.tuple(fc.integer({ min: 0, max: 150_000 }), fc.constantFrom("plain", "quoted", "block", "key")).map(([n, style]) => {
  const s = "x".repeat(n);
  return style === "plain" ? `pipelines: ${s}\n` : style === "quoted" ? `services: { web: { image: "${s}" } }\n` : style === "block" ? `a: |\n  ${s}\n` : `? ${s}\n: 1\n`;
});

/** Valid skeletons with a value swapped for any JSON value at a random place. */
const wrongTypes = fc.tuple(fc.constantFrom(HOIST, COMPOSE), fc.nat(), fc.jsonValue({ maxDepth: 4 })).map(([base, at, value]) => {
  const lines = base.split("\n");
  const i = at % (lines.length - 1);
  const line = lines[i] ?? "";
  const colon = line.indexOf(": ");
  const yamlValue = stringify(value, { flow: true }).trim();
  lines[i] = colon >= 0 ? `${line.slice(0, colon + 2)}${yamlValue}` : `${line}${yamlValue}`;
  return lines.join("\n");
});

const randomBytes = fc.uint8Array({ maxLength: 4_000 }).map((b) => Buffer.from(b).toString(b.length % 2 ? "utf8" : "latin1"));

/** Valid files with YAML's special characters spliced in. */
const mutated = fc.tuple(fc.constantFrom(HOIST, COMPOSE), fc.array(fc.tuple(fc.nat(), fc.constantFrom(..."[]{}:-?*&!|>'\"#%@,\n\t <\\"), fc.integer({ min: 1, max: 50 })), { minLength: 1, maxLength: 8 })).map(
  ([base, edits]) => edits.reduce<string>((text, [at, c, n]) => text.slice(0, at % (text.length + 1)) + c.repeat(n) + text.slice(at % (text.length + 1)), base),
);

export const categories = { deep, indented, manyKeys, laughs, badAlias, hugeScalar, wrongTypes, randomBytes, mutated };

/**
 * Every kind, the cheap ones more often. Sizes stay small enough for 10,000 cases in a minute: the
 * largest inputs (30,000 levels, 40,000 keys, 1 MiB) have their own tests in yaml-bounds.test.ts.
 */
export const untrustedYaml = fc.oneof(
  { arbitrary: deep, weight: 2 },
  { arbitrary: indented, weight: 1 },
  { arbitrary: manyKeys, weight: 1 },
  { arbitrary: laughs, weight: 2 },
  { arbitrary: badAlias, weight: 1 },
  { arbitrary: hugeScalar, weight: 1 },
  { arbitrary: wrongTypes, weight: 4 },
  { arbitrary: randomBytes, weight: 3 },
  { arbitrary: mutated, weight: 4 },
);

