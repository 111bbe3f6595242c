/**
 * "First use wins" markers: a Slack request's signature (replay protection) or an approval
 * link's nonce (single use). Claiming is one conditional write, never a read then a write, so
 * two racing deliveries cannot both win.
 */
export interface OnceStore {
  /** True for the first claim of `key` within `ttlMs`; false for every later one. */
  claimOnce(key: string, ttlMs: number): Promise<boolean>;
}
