import pino, { type Logger } from "pino";

export type { Logger };

/** Replaces every known secret in a text; applied to step logs before they are stored. */
export function redactor(secrets: readonly string[]): (text: string) => string {
  const live = secrets.filter((s) => s.length >= 4);
  if (live.length === 0) return (t) => t;
  const pattern = new RegExp(live.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
  return (text) => text.replace(pattern, "[redacted]");
}

/**
 * The process logger. Every line is redacted as written, whatever field a secret hides in (an
 * error's message, a nested object); headers that carry secrets are censored by path as well.
 */
export function createLogger(level: string, secrets: readonly string[] = [], destination?: pino.DestinationStream): Logger {
  const redact = redactor(secrets);
  const options: pino.LoggerOptions = {
    level,
    base: undefined,
    redact: { paths: ["*.authorization", "*.token", "*.secret", "headers.*"], censor: "[redacted]" },
    hooks: { streamWrite: redact },
    // On a Worker (functions/edge.ts) and on Lambda (lib/bundles/bundle.ts) pino is its browser
    // build, which has neither streams nor hooks: each line is redacted here and handed to the
    // console, which both keep as the function's log.
    // Its errors are plain objects only when serialized, which it does only when asked.
    serializers: { err: pino.stdSerializers.err },
    browser: { serialize: true, write: (line) => console.log(redact(JSON.stringify(line))) },
  };
  return destination ? pino(options, destination) : pino(options);
}
