import { type HoistError, PermanentError, RetryableError } from "../errors.ts";
import { answerOf, providerError, type ProviderName } from "./errors.ts";

/** What a token needs to report: a reader's token may only read. */
const WRITE: Record<ProviderName, string> = {
  GitHub:
    "GITHUB_TOKEN may write commit statuses and deployments (classic token: repo:status and repo_deployment scopes; fine-grained: Commit statuses and Deployments, read and write)",
  GitLab: "GITLAB_TOKEN has the api scope and at least the Developer role in the project",
};

/**
 * A report's failure as one of Hoist's errors, classified as a reader's is (providerError: an
 * outage, timeout or rate limit is retryable, with the limit's wait), except that a refused
 * token is told it must be able to write, and GitLab's 409 is retryable: it answers so while
 * another update of the same commit's statuses holds the lock (lib/api/commit_statuses.rb).
 */
export function reportError(provider: ProviderName, err: unknown, what: string): HoistError {
  const classified = providerError(provider, err, what);
  if (classified.retryable) return classified;
  const { status } = answerOf(err);
  if (status === 401 || status === 403) return new PermanentError(`${provider} refused ${what} (HTTP ${status}): check that ${WRITE[provider]}`, { cause: err });
  if (provider === "GitLab" && status === 409) return new RetryableError(classified.message, { cause: err });
  return classified;
}
