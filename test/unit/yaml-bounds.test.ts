import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, describe, expect, it } from "vitest";
import { parseHoistFile } from "../../lib/pipeline/config.ts";
import { readReleaseSpec } from "../../lib/compose/app.ts";
import { YamlIsolate } from "../../lib/yaml/isolate.ts";
import { COMPOSE_FILE_LIMITS, HOIST_FILE_LIMITS } from "../../lib/yaml/limits.ts";

// Each case was a way for a pushed file to crash, stall or outgrow the server (the "House" issue):
// now each is a failed read with a message naming the file, and the line where there is one.

async function refusal(text: string): Promise<string> {
  const r = await parseHoistFile(text);
  if (r.ok) throw new Error("expected a refusal");
  return r.error;
}

/** Runs `work`, measuring its wall time and the longest the main thread's event loop was blocked meanwhile. */
async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number; blockedMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const start = performance.now();
  const result = await work();
  const ms = performance.now() - start;
  delay.disable();
  return { result, ms, blockedMs: delay.max / 1e6 };
}

const STAGES = "    on: { push: true }\n    stages:\n      - build:\n          args:\n";

/** A billion laughs: `levels` anchors, each a list of `width` aliases to the one before. */
function laughs(levels: number, width = 10): string {
  const out = ['l0: &l0 "lol"'];
  for (let i = 1; i <= levels; i++) out.push(`l${i}: &l${i} [${Array.from({ length: width }, () => `*l${i - 1}`).join(", ")}]`);
  return out.join("\n") + "\n";
}

describe("deep nesting", () => {
  it("30,000 [ and 30,000 ] (60 KB) is refused at once, and the process lives on", async () => {
    const { result, ms, blockedMs } = await timed(() => refusal("pipelines: " + "[".repeat(30_000) + "]".repeat(30_000)));
    expect(result).toBe(".hoist.yml:1: nested deeper than 64 levels");
    expect(ms).toBeLessThan(2_000);
    expect(blockedMs).toBeLessThan(1_000);
    // The same worker (or its successor) still reads.
    expect((await parseHoistFile("pipelines: { m: { on: { manual: true }, stages: [ { build: } ] } }\n")).ok).toBe(true);
  });

  it.each([
    ["flow mappings", "a: " + "{a: ".repeat(5_000) + "1" + "}".repeat(5_000), 1],
    ["compact block lists", "a:\n  " + "- ".repeat(20_000) + "x\n", 2],
    ["explicit keys", "? ".repeat(20_000) + "x\n", 1],
    ["indented mappings, one level a line", Array.from({ length: 70 }, (_, i) => `${" ".repeat(i)}k${i}:`).join("\n") + " 1\n", 65],
  ])("%s are refused with the line where they go too deep", async (_name, text, line) => {
    expect(await refusal(text)).toBe(`.hoist.yml:${line}: nested deeper than 64 levels`);
  });

  it("refuses indentation that would let nesting grow across lines", async () => {
    expect(await refusal(`a:\n${" ".repeat(1_001)}b: 1\n`)).toBe(".hoist.yml:2: indented more than 1000 columns");
  });

  it("accepts 64 levels", async () => {
    const text = "pipelines: " + "[".repeat(63) + "]".repeat(63) + "\n";
    expect(await refusal(text)).toMatch(/^\.hoist\.yml:1: pipelines: /);
  });
});

describe("many keys", () => {
  it("40,000 build args (1.35 MB) are refused by size without parsing", async () => {
    const args = Array.from({ length: 40_000 }, (_, i) => `            ARG_NUMBER_${String(i).padStart(5, "0")}: value-${i}\n`).join("");
    const text = `pipelines:\n  main:\n${STAGES}${args}`;
    expect(text.length).toBeGreaterThan(1_300_000);
    const { result, ms, blockedMs } = await timed(() => refusal(text));
    expect(result).toBe(".hoist.yml: larger than 256 KiB");
    expect(ms).toBeLessThan(1_000);
    expect(blockedMs).toBeLessThan(1_000);
  });

  it("9,000 build args are read without blocking the event loop and refused by the schema's bound; a duplicate among them is named at its line", async () => {
    const args = Array.from({ length: 9_000 }, (_, i) => `            A${i}: v${i}\n`).join("");
    const text = `pipelines:\n  main:\n${STAGES}${args}`;
    const { result, blockedMs } = await timed(() => parseHoistFile(text));
    expect(result).toMatchObject({ ok: false, error: expect.stringMatching(/^\.hoist\.yml:\d+: pipelines\.main\.stages\[0\]\.build\.args: at most 64 entries/) });
    // The parse runs in the worker; the main thread only validates the plain value.
    expect(blockedMs).toBeLessThan(1_000);
    const duplicate = await refusal(`${text}            A17: again\n`);
    expect(duplicate).toBe(`.hoist.yml:${6 + 9_000 + 1}: invalid YAML: Map keys must be unique ("A17" is repeated)`);
  });

  it("refuses more nodes than the limit", async () => {
    const keys = Array.from({ length: 11_000 }, (_, i) => `k${i}: ${i}\n`).join("");
    expect(await refusal(keys)).toMatch(/^\.hoist\.yml:\d+: more than 20000 nodes$/);
  });
});

describe("aliases", () => {
  it("a billion laughs is refused by what it expands to, naming the line", async () => {
    const { result, ms, blockedMs } = await timed(() => refusal(laughs(9)));
    expect(result).toBe(".hoist.yml:6: aliases expand to more than 20000 nodes");
    expect(ms).toBeLessThan(2_000);
    expect(blockedMs).toBeLessThan(1_000);
    const compose = await readReleaseSpec(laughs(12), "web");
    expect(compose).toMatchObject({ ok: false, error: expect.stringMatching(/^docker-compose\.yml:\d+: aliases expand to more than 200000 nodes$/) });
  });

  it("pipelines: *nowhere names the alias and its line", async () => {
    expect(await refusal("pipelines: *nowhere\n")).toBe(".hoist.yml:1: alias *nowhere is not defined");
    expect(await refusal("a: 1\nb:\n  - c: *nowhere\n")).toBe(".hoist.yml:3: alias *nowhere is not defined");
  });

  it("an alias inside the node it names is refused, not followed forever", async () => {
    expect(await refusal("a: &a [1, *a]\n")).toBe(".hoist.yml:1: alias *a is used inside the node it names");
  });

  it("many aliases to a small anchor are fine: the limit is on size, not on count", async () => {
    const r = await readReleaseSpec(
      `x-env: &env { A: "1" }\nservices:\n  web:\n    ports: ["80"]\n    environment: *env\n` + Array.from({ length: 500 }, (_, i) => `  s${i}: { environment: *env }\n`).join(""),
      "web",
    );
    expect(r.ok && r.spec.environment).toEqual({ A: "1" });
  });
});

describe("huge scalars", () => {
  it("refuses one value over 64 KiB, at its line", async () => {
    expect(await refusal(`a: 1\nb: "${"x".repeat(70_000)}"\n`)).toBe(".hoist.yml:2: a value longer than 65536 characters");
    expect(await refusal(`a: 1\n? ${"k".repeat(70_000)}\n: 1\n`)).toBe(".hoist.yml:2: a key longer than 65536 characters");
  });

  it("refuses a large value repeated through aliases by the characters it expands to", async () => {
    const text = `big: &big "${"x".repeat(60_000)}"\nmany: [${Array.from({ length: 30 }, () => "*big").join(", ")}]\n`;
    expect(await refusal(text)).toBe(".hoist.yml:2: aliases expand to more than 1048576 characters");
  });
});

describe("tags and keys", () => {
  it("refuses values of tags that are not plain data", async () => {
    expect(await refusal("a: !!binary aGVsbG8=\n")).toBe(".hoist.yml:1: a !!binary value is not supported here");
  });

  it("refuses keys that are mappings or lists", async () => {
    expect(await refusal("? [a, b]\n: 1\n")).toBe(".hoist.yml:1: a mapping key must be a plain value, not a mapping, list or alias");
  });

  it("keeps __proto__ as a plain key (no prototype is touched)", async () => {
    const r = await refusal("__proto__: { polluted: true }\npipelines: {}\n");
    expect(r).toMatch(/unknown field "__proto__"/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe("merge keys (compose)", () => {
  const file = (...l: string[]) => l.join("\n") + "\n";

  it("merges a list of anchors: explicit keys win, then the first source that has the key", async () => {
    const r = await readReleaseSpec(
      file("x-a: &a { replicas: 2, update_config: { order: start-first } }", "x-b: &b { replicas: 3, resources: { limits: { cpus: '0.5' } } }", "services:", "  web:", "    ports: ['80']", "    deploy:", "      <<: [*a, *b]", "      update_config: { parallelism: 4 }"),
      "web",
    );
    if (!r.ok) throw new Error(r.error);
    expect(r.spec.replicas).toBe(2);
    expect(r.spec.resources).toEqual({ cpus: 0.5 });
    expect(r.spec.update).toMatchObject({ parallelism: 4, order: "stop-first" });
  });

  it("refuses a merge of something that is not a mapping", async () => {
    const r = await readReleaseSpec(file("x-a: &a [1]", "services:", "  web:", "    <<: *a"), "web");
    expect(r).toMatchObject({ ok: false, error: "docker-compose.yml:4: << merges mappings only (an alias to a mapping, or a list of them)" });
  });

  it("pipeline files take << as an ordinary key (YAML 1.2)", async () => {
    expect(await refusal("x: &x { a: 1 }\n<<: *x\n")).toMatch(/unknown field "x", "<<"/);
  });
});

describe("size", () => {
  it("refuses a compose file over 1 MiB before parsing", async () => {
    const r = await readReleaseSpec("services:\n" + "#".repeat(1024 * 1024) + "\n", "web");
    expect(r).toMatchObject({ ok: false, error: "docker-compose.yml: larger than 1 MiB" });
  });

  it("counts UTF-8 bytes, not characters", async () => {
    expect(await refusal(`a: "${"é".repeat(140 * 1024)}"\n`)).toBe(".hoist.yml: larger than 256 KiB");
  });
});

describe("large files", () => {
  it("a compose file of 25,000 nodes reads without blocking the event loop for a second", async () => {
    // Kept to a quarter of the size limit so that the read stays within its deadline on a loaded test host.
    const env = Array.from({ length: 12_500 }, (_, i) => `      V${i}: ${i}\n`).join("");
    const text = `services:\n  web:\n    ports: ["80"]\n    environment:\n${env}`;
    const { result, blockedMs } = await timed(() => readReleaseSpec(text, "web"));
    if (!result.ok) throw new Error(result.error);
    expect(Object.keys(result.spec.environment)).toHaveLength(12_500);
    expect(blockedMs).toBeLessThan(1_000);
  });
});

describe("the worker", () => {
  const isolates: YamlIsolate[] = [];
  afterAll(async () => {
    for (const i of isolates) await i.close();
  });

  it("a worker that runs out of memory is a clear error, and the next read gets a new worker", async () => {
    const isolate = new YamlIsolate({ deadlineMs: 30_000, resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2, stackSizeMb: 4 } });
    isolates.push(isolate);
    const big = Array.from({ length: 60_000 }, (_, i) => `k${i}: [a, b, c]`).join("\n");
    const r = await isolate.read(big, { file: "big.yml", limits: { ...COMPOSE_FILE_LIMITS, maxBytes: 10 * 1024 * 1024, maxNodes: 10_000_000 } });
    expect(r).toMatchObject({ ok: false, error: "big.yml: could not be read: the YAML parser ran out of memory" });
    expect(await isolate.read("a: 1\n", { file: "small.yml", limits: HOIST_FILE_LIMITS })).toMatchObject({ ok: true, value: { a: 1 } });
  });

  it("a read past the deadline is stopped and fails", async () => {
    const isolate = new YamlIsolate({ deadlineMs: 1, resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 } });
    isolates.push(isolate);
    const r = await isolate.read("a: 1\n", { file: ".hoist.yml", limits: HOIST_FILE_LIMITS });
    expect(r).toMatchObject({ ok: false, error: ".hoist.yml: took longer than 0.001 s to read" });
  });

  it("queues concurrent reads through one worker, each getting its own answer", async () => {
    const texts = Array.from({ length: 50 }, (_, i) => `pipelines: { p${i}: { on: { manual: true }, stages: [ { build: } ] } }\n`);
    const results = await Promise.all(texts.map((t) => parseHoistFile(t)));
    expect(results.map((r, i) => r.ok && Object.keys(r.file.pipelines)[0] === `p${i}`)).toEqual(texts.map(() => true));
  });
});
