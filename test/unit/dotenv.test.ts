import { describe, expect, it } from "vitest";
import { DOTENV_LIMITS, readDotEnv } from "../../lib/compose/dotenv.ts";
import type { Environment } from "../../lib/release/environment.ts";
import type { Run } from "../../lib/pipeline/run.ts";
import { deployStage, type DeployDeps } from "../../lib/runs/deploy.ts";

describe("a repository's .env", () => {
  it("reads KEY=value lines as Compose does: quotes, export, comments, empty values", () => {
    const r = readDotEnv('# settings\nexport A=1\nB="two words"\nC=\'$NOT_EXPANDED\'\nD=\n E = spaced \n', ".env");
    expect(r).toEqual({ ok: true, variables: { A: "1", B: "two words", C: "$NOT_EXPANDED", D: "", E: "spaced" } });
  });

  it("refuses what is no .env: too large, too many variables", () => {
    expect(readDotEnv("A=1\n".repeat(70_000), ".env")).toMatchObject({ ok: false, error: expect.stringMatching(/\.env is over 256 KiB/) });
    const many = Array.from({ length: DOTENV_LIMITS.maxVariables + 1 }, (_, i) => `V${i}=1`).join("\n");
    expect(readDotEnv(many, "app/.env")).toMatchObject({ ok: false, error: `app/.env sets ${DOTENV_LIMITS.maxVariables + 1} variables, more than ${DOTENV_LIMITS.maxVariables}` });
  });

  describe("in a deploy stage: the values of the compose file's ${VAR}s, read beside it at the run's sha", () => {
    const compose = 'services:\n  web:\n    ports: ["8080"]\n    environment:\n      DB: "${DB_HOST:?set DB_HOST in .env}:5432"\n      MODE: "${MODE}"\n';
    const env = { name: "staging", protection: {} } as Environment;
    const run = { repo: { provider: "github", fullName: "acme/shop" }, sha: "a".repeat(40), stages: [], branch: "main" } as unknown as Run;
    const stage = (files: Record<string, string>, composePath = "docker-compose.yml") => {
      const read: string[] = [];
      const deps = {
        store: { getEnvironment: async () => env, listEnvironments: async () => [env] },
        source: { readFile: async (_repo: unknown, _sha: string, path: string) => (read.push(path), files[path]) },
      } as unknown as DeployDeps;
      const log: string[] = [];
      return deployStage(deps, run, 0, { kind: "deploy", environment: "staging", compose: composePath }, { log: (l) => log.push(l) }).then((result) => ({ result, log, read }));
    };

    it("without one, a required variable fails the stage naming its line, and an unset one warns", async () => {
      const { result, read } = await stage({ "docker-compose.yml": compose });
      expect(read).toEqual(["docker-compose.yml", ".env"]);
      expect(result).toMatchObject({ ok: false, error: expect.stringMatching(/^docker-compose\.yml:5: .*required variable DB_HOST is missing a value: set DB_HOST in \.env/) });
    });

    it("with one, its values fill them in (the stage goes on to the image)", async () => {
      const { result, log, read } = await stage({ "deploy/compose.yml": compose, "deploy/.env": "DB_HOST=db\nMODE=production\n" }, "deploy/compose.yml");
      expect(read).toEqual(["deploy/compose.yml", "deploy/.env"]);
      expect(result).toMatchObject({ ok: false, error: "no image to deploy: the run built nothing" });
      expect(log.filter((l) => l.includes("variable"))).toEqual([]);
    });

    it("a .env that is no .env fails the stage saying why", async () => {
      const { result } = await stage({ "docker-compose.yml": compose, ".env": "A=1\n".repeat(70_000) });
      expect(result).toMatchObject({ ok: false, error: expect.stringMatching(/^\.env is over 256 KiB/) });
    });
  });
});
