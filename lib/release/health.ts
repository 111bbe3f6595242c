import type { HealthProbe, HttpHealth, ReleaseClock } from "./ports.ts";

/**
 * Probes until the instance answers the expected status, up to `retries` times `intervalMs`
 * apart. Resolves to undefined when healthy, else to what the last probe saw.
 */
export async function waitHealthy(
  { probe, clock }: { probe: HealthProbe; clock: ReleaseClock },
  instance: { address: string; port: number },
  health: HttpHealth,
): Promise<string | undefined> {
  let last = "not probed";
  for (let attempt = 0; attempt <= health.retries; attempt++) {
    const answer = await probe.get(instance.address, instance.port, health);
    if ("status" in answer && answer.status === health.status) return undefined;
    last = "status" in answer ? `answered ${answer.status}` : answer.error;
    if (attempt < health.retries) await clock.sleep(health.intervalMs);
  }
  return `GET ${health.path} ${last} (expected ${health.status})`;
}
