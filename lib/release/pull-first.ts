import { isRetryable, messageOf } from "../errors.ts";
import type { ReleaseContext } from "./ports.ts";

/** Waits before each further try of a pull whose registry or engine had an outage: about 15 s in all. */
const RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 8_000];

/**
 * Makes sure the environment's engine holds `image` before anything changes, pulling it when it
 * does not. An outage is tried again a few times, saying so in the release's log; what is still
 * failing after that (or fails for good: a refused login, an image the registry lacks) is thrown.
 */
export async function pullFirst(ctx: Pick<ReleaseContext, "host" | "clock" | "log">, image: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await ctx.host.ensureImage(image);
      return;
    } catch (err) {
      const delay = RETRY_DELAYS_MS[attempt];
      if (delay === undefined || !isRetryable(err)) throw err;
      ctx.log(`${messageOf(err)}: trying again in ${delay / 1000} s`);
      await ctx.clock.sleep(delay);
    }
  }
}
