import { describe, expect, it } from "vitest";
import { parseImageRef, repositoryOf } from "../../lib/pipeline/image-ref.ts";
import { pushTarget } from "../../lib/engine/docker.ts";

describe("image references, parsed in one place by Docker's rules", () => {
  it.each([
    ["shop", { path: "shop" }],
    ["shop:abc", { path: "shop", tag: "abc" }],
    ["team/shop:1.2", { path: "team/shop", tag: "1.2" }],
    ["127.0.0.1:5000/shop", { host: "127.0.0.1:5000", path: "shop" }],
    ["127.0.0.1:5000/shop:abc", { host: "127.0.0.1:5000", path: "shop", tag: "abc" }],
    ["localhost/a/b", { host: "localhost", path: "a/b" }],
    ["registry.example.com/team/shop@sha256:00ff", { host: "registry.example.com", path: "team/shop", digest: "sha256:00ff" }],
    ["reg.io/a/b:1@sha256:00", { host: "reg.io", path: "a/b", tag: "1", digest: "sha256:00" }],
  ])("%s", (ref, parsed) => {
    expect(parseImageRef(ref)).toEqual(parsed);
    expect(repositoryOf(parseImageRef(ref))).toBe(ref.replace(/@.*$/, "").replace(/:[^:/]*$/, ""));
  });

  it("a push target has a tag (latest by default) and never a digest", () => {
    expect(pushTarget("127.0.0.1:5000/shop")).toEqual({ repo: "127.0.0.1:5000/shop", tag: "latest" });
    expect(pushTarget("127.0.0.1:5000/shop:abc")).toEqual({ repo: "127.0.0.1:5000/shop", tag: "abc" });
    expect(() => pushTarget("reg.io/shop@sha256:00")).toThrow(/give a tag, not a digest/);
  });
});
