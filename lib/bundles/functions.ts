/** The Lambda functions: each an entry in functions/ exporting `handler`, bundled to dist/lambda/<name>/index.mjs. */
export const LAMBDA_FUNCTIONS = ["webhook", "chat", "api", "worker", "reconcile", "cron"] as const;
export type LambdaFunction = (typeof LAMBDA_FUNCTIONS)[number];

export const isLambdaFunction = (name: string): name is LambdaFunction => (LAMBDA_FUNCTIONS as readonly string[]).includes(name);

/** The size the webhook's bundle may not outgrow: its cold start is on a pusher's clock. */
export const WEBHOOK_BUDGET_BYTES = 1024 * 1024;
