/** One `docker build` of a build stage, with every path relative to the checkout's root. */
export interface BuildStep {
  /** What the log calls it: a service name, or the image for a plain build. */
  label: string;
  tag: string;
  context: string;
  dockerfile: string;
  /** The Dockerfile's text, given on the build's input instead of `dockerfile`. */
  dockerfileInline?: string;
  args: Readonly<Record<string, string>>;
  target?: string;
  labels?: Readonly<Record<string, string>>;
  noCache?: boolean;
  pull?: boolean;
}

/**
 * A word for POSIX sh: inside single quotes nothing is special but the quote itself, which
 * closes, is escaped, and reopens. The whole of the rule, so written here rather than taken
 * from a package that quotes for other shells too.
 */
export function shellWord(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The builder's script: first every context and Dockerfile is checked to lie inside the
 * checkout (the schema checks them as text; a symlink committed to the repository could still
 * lead a build to another job's files in the shared agent, so their real paths are checked
 * where the builds run), then each image is built in turn, saying which. Values from the
 * repository reach the shell only as quoted words.
 */
export function buildScript(steps: readonly BuildStep[]): string {
  const lines = [
    "set -e",
    "root=$(pwd -P)",
    'inside() { [ -e "$1" ] && real=$(realpath "$1") || { echo "hoist: $1 does not exist in the repository" >&2; exit 2; }; case "$real/" in "$root"/*) ;; *) echo "hoist: $1 leads out of the repository through a symlink: refused" >&2; exit 2;; esac; }',
  ];
  for (const s of steps) lines.push(`inside ${shellWord(s.context)}${s.dockerfileInline === undefined ? `; inside ${shellWord(s.dockerfile)}` : ""}`);
  for (const [i, s] of steps.entries()) {
    if (steps.length > 1) lines.push(`echo ${shellWord(`hoist: building ${s.label} (${i + 1} of ${steps.length}) as ${s.tag}`)}`);
    // --force-rm: a failed step's container is removed too, not left on the engine.
    const argv = ["docker", "build", "--force-rm", "-t", s.tag, "-f", s.dockerfileInline === undefined ? s.dockerfile : "-"];
    if (s.target !== undefined) argv.push("--target", s.target);
    for (const [k, v] of Object.entries(s.args)) argv.push("--build-arg", `${k}=${v}`);
    for (const [k, v] of Object.entries(s.labels ?? {})) argv.push("--label", `${k}=${v}`);
    if (s.noCache) argv.push("--no-cache");
    if (s.pull) argv.push("--pull");
    argv.push(s.context);
    const command = argv.map(shellWord).join(" ");
    lines.push(s.dockerfileInline === undefined ? command : `printf '%s' ${shellWord(s.dockerfileInline)} | ${command}`);
  }
  return lines.join("\n");
}
