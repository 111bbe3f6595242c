import type { ApprovalRequest, ChatNotifier, Notice } from "./port.ts";
import type { SlackAdapter } from "./slack.ts";

/** Approval requests and notices to one Slack channel (SLACK_CHANNEL); clicks come back to /chat/slack. */
export class SlackNotifier implements ChatNotifier {
  constructor(
    private readonly slack: SlackAdapter,
    private readonly channel: string,
  ) {}

  async approvalRequested(req: ApprovalRequest): Promise<void> {
    await this.slack.postApprovalRequest(this.channel, req);
  }

  async notify(notice: Notice): Promise<void> {
    await this.slack.postNotice(this.channel, notice);
  }
}
