import type { Run, StageSpec } from "../../lib/pipeline/run.ts";
import { derive } from "../../lib/pipeline/machine.ts";

/** A fresh run with the given stages, as the webhook creates it. */
export function makeRun(specs: StageSpec[] = defaultSpecs(), overrides: Partial<Run> = {}): Run {
  return derive({
    id: "r1",
    repo: { provider: "github", fullName: "acme/shop", cloneUrl: "https://github.com/acme/shop.git" },
    ref: "refs/heads/main",
    branch: "main",
    sha: "0123456789abcdef0123456789abcdef01234567",
    pipeline: "main",
    trigger: { type: "push", delivery: "d1" },
    status: "queued",
    stages: specs.map((spec, i) => ({ name: `${spec.kind}-${i}`, spec, status: "pending" })),
    createdAt: 1000,
    updatedAt: 1000,
    ...overrides,
  });
}

export function defaultSpecs(): StageSpec[] {
  return [
    { kind: "build", image: "shop", context: ".", dockerfile: "Dockerfile", args: {} },
    { kind: "test", run: "npm test", timeoutSec: 60, env: {} },
    { kind: "push", target: "127.0.0.1:5000/shop" },
  ];
}
