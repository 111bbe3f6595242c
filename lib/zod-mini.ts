// zod/mini, for the modules on the webhook's path (README, Serverless: Cold start). Classic
// zod costs the webhook about 20 ms at its cold start before a single schema is built (a
// bundle of zod alone: 25 ms against 4 ms); mini builds the same checks in functions instead
// of methods, and the two mix: a classic schema holds mini ones. Mini leaves zod's messages
// to its user, where classic sets English at its import: set here, so every message reads
// the same whichever of the two a process loaded.
import { en } from "zod/locales";
import * as z from "zod/mini";

z.config(en());

export * from "zod/mini";
