import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { MAX_BUILDS, readBuilds, type BuildsOptions } from "../../lib/compose/builds.ts";
import { buildScript } from "../../lib/runs/build-script.ts";

const lines = (...l: string[]) => l.join("\n") + "\n";
const read = (text: string, options: Partial<BuildsOptions> = {}) => readBuilds(text, { file: "docker-compose.yml", prefix: "shop", variables: {}, ...options });

describe("a compose build stage reads each service's build: section, as docker compose build does", () => {
  it("names each image after its service unless image: names it, and builds equal sections once", async () => {
    const r = await read(
      lines(
        "services:",
        "  web:",
        "    build: .",
        "  worker:",
        "    build: .",
        "  api:",
        "    image: registry.example.com/team/api:latest",
        "    build: { context: ./api, dockerfile: docker/Dockerfile.prod, target: runtime, args: { MODE: prod, N: 3 }, labels: [team=shop] }",
        "  db:",
        "    image: postgres:16",
      ),
    );
    if (!r.ok) throw new Error(r.error);
    expect(r.builds).toEqual([
      { services: ["web", "worker"], image: "shop-web", context: ".", dockerfile: "Dockerfile", args: {}, labels: {}, noCache: false, pull: false },
      { services: ["api"], image: "registry.example.com/team/api", context: "api", dockerfile: "api/docker/Dockerfile.prod", target: "runtime", args: { MODE: "prod", N: "3" }, labels: { team: "shop" }, noCache: false, pull: false },
    ]);
    expect(r.warnings).toEqual([]);
  });

  it("takes paths from the compose file's directory, args without a value from the variables (left out when unset), and interpolates", async () => {
    const r = await read(lines("services:", "  web:", "    build:", "      context: ../web", "      args: [VERSION, UNSET, 'PLAIN=${TAG:-1.0}']", "      no_cache: true", "      pull: true"), {
      file: "deploy/compose.yaml",
      variables: { VERSION: "7" },
    });
    if (!r.ok) throw new Error(r.error);
    expect(r.builds[0]).toMatchObject({ context: "web", dockerfile: "web/Dockerfile", args: { VERSION: "7", PLAIN: "1.0" }, noCache: true, pull: true });
  });

  it("warns, with its line, about a key that changes nothing in the image; refuses one whose absence would change the build or that reaches past the repository", async () => {
    const warned = await read(lines("services:", "  web:", "    build:", "      context: .", "      cache_from: [shop:cache]", "      platforms: [linux/amd64]"));
    expect(warned.ok && warned.warnings).toEqual([
      "docker-compose.yml:5: services.web.build.cache_from is not acted on: Hoist builds with the builder engine's own cache",
      "docker-compose.yml:6: services.web.build.platforms is not acted on: Hoist builds for the builder engine's platform",
    ]);
    for (const [build, line, message] of [
      ["{ context: 'https://github.com/acme/shop.git#main' }", 3, /build\.context: a build uses the pushed commit's files/],
      ["{ context: 'git@github.com:acme/shop.git' }", 3, /build\.context: a build uses the pushed commit's files/],
      ["../..", 3, /build\.context: \.\.\/\.\. is outside the repository/],
      ["{ context: ., dockerfile: ../../etc/Dockerfile }", 3, /build\.dockerfile: \.\.\/\.\.\/etc\/Dockerfile is outside the repository/],
      ["{ context: ., ssh: [default] }", 3, /build\.ssh is refused: a build gets the repository's files alone/],
      ["{ context: ., secrets: [npm] }", 3, /build\.secrets is refused/],
      ["{ context: ., network: host }", 3, /build\.network: only default or none/],
      ["{ context: ., privileged: true }", 3, /build\.privileged is refused: a build runs with no extra privileges/],
      ["{ context: ., target: 'a b' }", 3, /build\.target: expected a stage name/],
      ["{ context: ., args: { 'A B': 1 } }", 3, /build\.args: "A B" is not a name/],
      ["{ context: ., frobnicate: 1 }", 3, /build\.frobnicate is refused: not a build key Hoist knows/],
      ["[.]", 3, /build: expected a context path, or a mapping/],
    ] as const) {
      const r = await read(lines("services:", "  web:", `    build: ${build}`));
      expect(r.ok, build).toBe(false);
      if (!r.ok) expect(r.error, build).toMatch(new RegExp(`^docker-compose\\.yml:${line}: services\\.web\\.${message.source}`));
    }
  });

  it("builds only the services named (one of a profile only then), refuses one without build:, two builds under one name and more than the stage can hold", async () => {
    const text = lines("services:", "  a: { build: ./a }", "  b: { build: ./b }", "  c: { image: redis }", "  d: { build: { context: ., ssh: [default] }, profiles: [debug] }");
    const only = await read(text, { services: ["b"] });
    expect(only.ok && only.builds.map((b) => b.services)).toEqual([["b"]]);
    const all = await read(text);
    expect(all.ok && all.builds.map((b) => b.services)).toEqual([["a"], ["b"]]);
    expect(await read(text, { services: ["d"] })).toMatchObject({ ok: false, error: expect.stringMatching(/services\.d\.build\.ssh is refused/) });
    expect(await read(text, { services: ["c"] })).toMatchObject({ ok: false, error: "docker-compose.yml:4: services.c: no build: section, so nothing to build" });
    expect(await read(text, { services: ["x"] })).toMatchObject({ ok: false, error: expect.stringMatching(/no service "x"/) });
    expect(await read(lines("services:", "  a: { build: ./a, image: one }", "  b: { build: ./b, image: one }"))).toMatchObject({ ok: false, error: expect.stringMatching(/services a and b build different images under one name, one/) });
    expect(await read(lines("services:", "  db: { image: postgres }"))).toMatchObject({ ok: false, error: expect.stringMatching(/no service has a build: section/) });
    const many = lines("services:", ...Array.from({ length: MAX_BUILDS + 1 }, (_, i) => `  s${i}: { build: ./s${i} }`));
    expect(await read(many)).toMatchObject({ ok: false, error: expect.stringMatching(new RegExp(`${MAX_BUILDS + 1} images to build, at most ${MAX_BUILDS}`)) });
  });
});

describe("the builder's script", () => {
  const run = promisify(execFile);

  /** Runs the script in a checkout, with a `docker` that records its argv (one file per call) and its input. */
  async function runScript(script: string, files: Record<string, string>): Promise<{ code: number; calls: string[][]; stdin: string[]; err: string }> {
    const dir = await mkdtemp(join(tmpdir(), "hoist-build-script-"));
    const bin = join(dir, "bin");
    const checkout = join(dir, "checkout");
    await mkdir(bin);
    await mkdir(checkout);
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(checkout, path, ".."), { recursive: true });
      await writeFile(join(checkout, path), text);
    }
    // Reads its input only for `-f -`, as docker does; fails for a tag named fail.
    await writeFile(
      join(bin, "docker"),
      lines(
        "#!/bin/sh",
        `mkdir -p ${dir}/calls; n=$(ls ${dir}/calls | grep -vc in)`,
        `for a in "$@"; do printf '%s\\0' "$a"; done > ${dir}/calls/$n`,
        `case " $* " in *" -f - "*) cat > ${dir}/calls/$n.in;; esac`,
        `case " $* " in *" fail:abc "*) exit 1;; esac`,
      ),
    );
    await chmod(join(bin, "docker"), 0o755);
    let code = 0;
    let err = "";
    try {
      await run("sh", ["-c", script], { cwd: checkout, env: { PATH: `${bin}:/usr/bin:/bin` } });
    } catch (e) {
      code = (e as { code: number }).code;
      err = (e as { stderr: string }).stderr;
    }
    const calls: string[][] = [];
    const stdin: string[] = [];
    for (let n = 0; ; n++) {
      const argv = await readFile(join(dir, "calls", String(n)), "utf8").catch(() => undefined);
      if (argv === undefined) break;
      calls.push(argv.split("\0").slice(0, -1));
      stdin.push(await readFile(join(dir, "calls", `${n}.in`), "utf8").catch(() => ""));
    }
    return { code, calls, stdin, err };
  }

  it("passes every value from the repository as one word, whatever it holds; an inline Dockerfile goes on the build's input", async () => {
    const hostile = `it's $(touch pwned) \`id\` "q" ; rm -rf / \n next line`;
    const script = buildScript([
      { label: "web", tag: "shop-web:abc", context: "web dir", dockerfile: "web dir/Dockerfile", args: { A: hostile }, target: "prod", labels: { l: hostile }, noCache: true, pull: true },
      { label: "api", tag: "shop-api:abc", context: ".", dockerfile: "Dockerfile", dockerfileInline: `FROM scratch\nLABEL x='${hostile}'\n`, args: {} },
    ]);
    const r = await runScript(script, { "web dir/Dockerfile": "FROM scratch\n" });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      ["build", "--force-rm", "-t", "shop-web:abc", "-f", "web dir/Dockerfile", "--target", "prod", "--build-arg", `A=${hostile}`, "--label", `l=${hostile}`, "--no-cache", "--pull", "web dir"],
      ["build", "--force-rm", "-t", "shop-api:abc", "-f", "-", "."],
    ]);
    expect(r.stdin[1]).toBe(`FROM scratch\nLABEL x='${hostile}'\n`);
  });

  it("builds nothing when a context or Dockerfile is missing or leads out of the checkout, and stops at the first failed build", async () => {
    const step = (context: string, dockerfile: string) => ({ label: context, tag: `t-${context.length}:abc`, context, dockerfile, args: {} });
    const missing = await runScript(buildScript([step(".", "Dockerfile"), step("api", "api/Dockerfile")]), { Dockerfile: "FROM scratch\n" });
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/hoist: api does not exist in the repository/);
    expect(missing.calls).toEqual([]);
    const outside = await runScript(buildScript([step("..", "Dockerfile")]), { Dockerfile: "x" });
    expect(outside.code).toBe(2);
    expect(outside.err).toMatch(/leads out of the repository/);
    expect(outside.calls).toEqual([]);
    const failing = await runScript(buildScript([{ ...step(".", "Dockerfile"), tag: "fail:abc" }, step(".", "Dockerfile")]), { Dockerfile: "x" });
    expect(failing.code).toBe(1);
    expect(failing.calls.map((c) => c[3])).toEqual(["fail:abc"]);
  });
});
