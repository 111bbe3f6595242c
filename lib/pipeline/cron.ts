import { Cron } from "croner";

/**
 * A paused croner job for `pattern` in `timezone` (UTC when none), read as `.hoist.yml` allows:
 * 5 fields, 6 with seconds first, or a nickname (@daily); never croner's 7th field, a year.
 */
export function cronOf(pattern: string, timezone: string | undefined): Cron {
  return new Cron(pattern, { paused: true, mode: "5-or-6-parts", timezone: timezone ?? "UTC" });
}

/** What is wrong with a cron pattern or time zone, as croner reads them; undefined when nothing is. */
export function cronProblem(pattern: string, timezone: string | undefined): { field: "cron" | "timezone"; message: string } | undefined {
  if (timezone !== undefined) {
    try {
      new Intl.DateTimeFormat("en", { timeZone: timezone });
    } catch {
      return { field: "timezone", message: `"${timezone}" is not an IANA time zone such as Europe/Paris or UTC` };
    }
  }
  try {
    cronOf(pattern, timezone);
  } catch (err) {
    return { field: "cron", message: `"${pattern}" is not a cron pattern (minute hour day month weekday, e.g. "0 3 * * *"): ${(err as Error).message}` };
  }
  // The scheduler looks for due slots once a minute and starts one run per tick at most, so a
  // pattern firing several times a minute would silently fire once: it is refused instead.
  const fields = pattern.trim().split(/\s+/);
  if (fields.length === 6 && !/^\d{1,2}$/.test(fields[0] ?? ""))
    return { field: "cron", message: `"${pattern}" fires more than once a minute: a schedule runs at most once a minute, so its seconds field is one number (e.g. "0 */5 * * * *")` };
  return undefined;
}
