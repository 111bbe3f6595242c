import { mergeAsks, type ApprovalAsk, type ApprovalRule } from "../pipeline/approval.ts";
import type { StageSpec } from "../pipeline/run.ts";
import type { EnvironmentStore } from "../release/environment.ts";

/**
 * The approval a deploy stage needs, fixed when it comes up: its own `approval:` and its
 * environment's protection, the stricter of the two (a commit cannot lift the gate of an
 * environment: that rule lives on the server). An environment that is not registered asks for
 * nothing here; the deploy then fails naming it.
 */
export async function gateRule(
  environments: EnvironmentStore | undefined,
  spec: Extract<StageSpec, { kind: "deploy" }>,
  openedAt: number,
): Promise<{ rule?: ApprovalRule; error?: string }> {
  const asks: { from: string; ask: ApprovalAsk }[] = [];
  if (spec.approval) asks.push({ from: ".hoist.yml", ask: spec.approval });
  const env = await environments?.getEnvironment(spec.environment);
  const protection = env?.protection.approval;
  if (protection?.required) {
    const { required: _required, ...ask } = protection;
    asks.push({ from: `environment ${spec.environment}`, ask });
  }
  const merged = mergeAsks(asks, openedAt);
  if (merged === undefined) return {};
  return "error" in merged ? { error: `approval of ${spec.environment}: ${merged.error}` } : { rule: merged };
}
