import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerEngine } from "../../lib/engine/docker.ts";
import { requireDocker, uniqueSuffix } from "../support/docker.ts";
import { waitFor } from "../support/wait.ts";

const BUILDER = "hoist/builder:latest";
const names: string[] = [];
let engine: DockerEngine;

beforeAll(async () => {
  await requireDocker();
  engine = new DockerEngine();
});
afterAll(async () => {
  await Promise.all(names.map((n) => engine.removeJob(n)));
});

function job(cmd: string) {
  const name = `agent-test-${uniqueSuffix()}`;
  names.push(name);
  return { name, image: BUILDER, agent: true, cmd: ["sh", "-c", cmd] };
}

describe("jobs in the engine's job agent (real Docker engine)", () => {
  it("runs a job once however often and however concurrently it is ensured, with its exit code and output", async () => {
    const marker = `agent-runs-${uniqueSuffix()}`;
    const spec = job(`echo once >> /tmp/${marker}; echo out; echo err >&2; exit 3`);
    await Promise.all([engine.ensureJob(spec), engine.ensureJob(spec), new DockerEngine().ensureJob(spec)]);
    const done = await engine.waitJob(spec.name, 30_000);
    expect(done).toMatchObject({ state: "exited", exitCode: 3 });
    await engine.ensureJob(spec); // a later ensure of a finished job does not run it again
    const fresh = new DockerEngine(); // a process that did not start it reads the job's record
    expect(await fresh.waitJob(spec.name, 5_000)).toMatchObject({ state: "exited", exitCode: 3 });
    expect(await fresh.jobLogs(spec.name)).toBe("out\nerr\n");
    const counter = job(`cat /tmp/${marker}`);
    await engine.ensureJob(counter);
    await engine.waitJob(counter.name, 30_000);
    expect(await engine.jobLogs(counter.name)).toBe("once\n");
  });

  it("a job outlives the process that started it and is found again by name", async () => {
    const spec = job("sleep 1; echo finished");
    const starter = new DockerEngine();
    await starter.ensureJob(spec);
    const other = new DockerEngine();
    expect(await other.inspectJob(spec.name)).toMatchObject({ state: "running" });
    expect(await other.waitJob(spec.name, 30_000)).toMatchObject({ state: "exited", exitCode: 0 });
    expect(await other.jobLogs(spec.name)).toBe("finished\n");
  });

  it("the starter learns the end and output of a job longer than the engine's 2 s stream grace from its own stream", async () => {
    const docker = await requireDocker();
    const spec = job("sleep 3; echo done");
    await engine.ensureJob(spec);
    expect(await engine.waitJob(spec.name, 60_000)).toMatchObject({ state: "exited", exitCode: 0 });
    // The record is gone: what the starter answers now can only come from its attached stream.
    await docker.getContainer("hoist-agent").exec({ Cmd: ["rm", "-rf", `/jobs/${spec.name}`] }).then((e) => e.start({})).then((s) => new Promise((r) => (s.on("end", r), s.resume())));
    expect(await engine.inspectJob(spec.name)).toMatchObject({ state: "exited", exitCode: 0 });
    expect(await engine.jobLogs(spec.name)).toBe("done\n");
  });

  it("removing a running job stops it and forgets it", async () => {
    const spec = job("sleep 60");
    await engine.ensureJob(spec);
    expect(await engine.inspectJob(spec.name)).toMatchObject({ state: "running" });
    await engine.removeJob(spec.name);
    expect(await engine.inspectJob(spec.name)).toEqual({ state: "missing" });
    await engine.removeJob(spec.name); // removing twice is fine
  });

  it("unpacks the job's files where its command runs", async () => {
    const { Readable } = await import("node:stream");
    const { pack } = await import("tar-fs");
    const { makeContext } = await import("../support/docker.ts");
    const dir = await makeContext({ "a.txt": "alpha\n", "sub/b.txt": "beta\n" });
    const spec = { ...job("cat a.txt sub/b.txt"), files: async () => Readable.from(pack(dir)) };
    await engine.ensureJob(spec);
    expect(await engine.waitJob(spec.name, 30_000)).toMatchObject({ state: "exited", exitCode: 0 });
    expect(await engine.jobLogs(spec.name)).toBe("alpha\nbeta\n");
  });

  it("a job whose agent restarted under it is reported dead (exit 137), never running forever", async () => {
    const docker = await requireDocker();
    const spec = job("sleep 60");
    await engine.ensureJob(spec);
    expect(await engine.inspectJob(spec.name)).toMatchObject({ state: "running" });
    // The starter knows at once; the agent's record says so once the runner has begun.
    const reader = new DockerEngine();
    await waitFor("the job's record to say it runs", async () => (await reader.inspectJob(spec.name)).state === "running");
    await docker.getContainer("hoist-agent").restart({ t: 0 });
    expect(await new DockerEngine().inspectJob(spec.name)).toMatchObject({ state: "exited", exitCode: 137 });
  });
});
