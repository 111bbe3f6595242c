import { CliError } from "./output.ts";

export interface StdinValue {
  /** The option that asked for it, e.g. `--password-stdin`. */
  flag: string;
  /** What is read, e.g. "the password or token". */
  what: string;
  /** A command that pipes it in, for the message when nothing is piped. */
  example: string;
  /** More than this is not the value alone (the server would refuse it): stop reading. */
  maxBytes: number;
}

/**
 * A value from standard input, as `docker login --password-stdin` takes it: the whole input,
 * one line ending dropped. Secrets come this way so they never sit in shell history.
 */
export async function readStdinValue(opts: StdinValue): Promise<string> {
  if (process.stdin.isTTY) throw new CliError(`${opts.flag} reads ${opts.what} from standard input: pipe it in, e.g. \`${opts.example}\``);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > opts.maxBytes) throw new CliError(`standard input holds more than ${opts.maxBytes} bytes: pipe in ${opts.what} alone`);
    chunks.push(chunk as Buffer);
  }
  const value = Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
  if (!value) throw new CliError(`standard input was empty: pipe ${opts.what} in`);
  return value;
}
