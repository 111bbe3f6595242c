/**
 * Image references (`[host[:port]/]path[:tag][@digest]`), parsed in this one place by Docker's
 * rules: the first path segment is a registry host when it has a dot or a port, or is
 * `localhost`; a tag is a colon after the last slash; a digest follows `@`.
 */
export interface ImageRef {
  /** Registry host (with port), when the reference names one. */
  host?: string;
  /** The repository path on that registry, e.g. `team/shop`. */
  path: string;
  tag?: string;
  digest?: string;
}

export function parseImageRef(ref: string): ImageRef {
  const at = ref.indexOf("@");
  const named = at < 0 ? ref : ref.slice(0, at);
  const digest = at < 0 ? undefined : ref.slice(at + 1);
  const colon = named.lastIndexOf(":");
  const tagged = colon > named.lastIndexOf("/");
  const name = tagged ? named.slice(0, colon) : named;
  const [first, ...rest] = name.split("/");
  const host = rest.length > 0 && first !== undefined && (first.includes(".") || first.includes(":") || first === "localhost") ? first : undefined;
  return {
    ...(host !== undefined ? { host } : {}),
    path: host !== undefined ? rest.join("/") : name,
    ...(tagged ? { tag: named.slice(colon + 1) } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** The reference's repository, without tag or digest: `host:5000/app:tag` → `host:5000/app`. */
export function repositoryOf(ref: ImageRef): string {
  return ref.host !== undefined ? `${ref.host}/${ref.path}` : ref.path;
}
