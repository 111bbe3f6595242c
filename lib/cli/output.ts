import { InvalidArgumentError } from "commander";
import type { CliConfig } from "../config.ts";
import { HoistApiError } from "./client.ts";
import { paint, type Style } from "./format.ts";

/** An error whose message is the whole story for the user: printed without a stack. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Where a command writes, and whether in colour. */
export interface Output {
  readonly color: boolean;
  readonly stdout: NodeJS.WriteStream;
  paint(style: Style, text: string): string;
  print(text?: string): void;
  /** A yellow `hoist: ...` line on stderr. */
  warn(message: string): void;
  /** Commander's usage errors, red where stderr takes colour. */
  usageError(text: string): string;
  /** Prints the error (a stack only for one nobody foresaw) and exits. */
  fail(err: unknown): never;
}

/** Colour only on a terminal, unless NO_COLOR is set or the terminal is dumb. */
export function createOutput(cli: CliConfig, stdout: NodeJS.WriteStream = process.stdout, stderr: NodeJS.WriteStream = process.stderr): Output {
  const colorOn = (stream: NodeJS.WriteStream) => Boolean(stream.isTTY) && !cli.NO_COLOR && cli.TERM !== "dumb";
  const color = colorOn(stdout);
  const errorLine = (style: Style, message: string) => void stderr.write(paint(style, `hoist: ${message}`, colorOn(stderr)) + "\n");
  return {
    color,
    stdout,
    paint: (style, text) => paint(style, text, color),
    print: (text = "") => void stdout.write(text + "\n"),
    warn: (message) => errorLine("yellow", message),
    usageError: (text) => paint("red", text, colorOn(stderr)),
    fail: (err) => {
      const known = err instanceof CliError || err instanceof HoistApiError;
      errorLine("red", known ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exit(err instanceof CliError ? err.exitCode : 1);
    },
  };
}

/** A commander argument parser for a whole number in [min, max]. */
export function intArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/**
 * Ctrl+C reaches both this process and the bin wrapper (scripts/hoist.mjs), which forwards
 * what it gets: a second signal right after the first is that echo, not a second Ctrl+C.
 */
export function isEcho(firstAt: number): boolean {
  return Date.now() - firstAt < 500;
}
