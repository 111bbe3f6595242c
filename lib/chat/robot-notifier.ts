import type { Clock } from "../clock.ts";
import { linkUrl, newNonce, signLink } from "./links.ts";
import type { ApprovalRequest, ChatNotifier, Notice } from "./port.ts";
import type { RobotKind } from "./robot-formats.ts";
import { ANYONE, robotApprovalMessage, robotNoticeMessage, type ApproverLinks } from "./robot-messages.ts";
import { sendRobot } from "./robots.ts";

export interface RobotNotifierOptions {
  kind: RobotKind;
  /** The robot's webhook (HOIST_ROBOT_URL); it carries the robot's credential. */
  url: string;
  /** DingTalk's and Feishu's signing secret (HOIST_ROBOT_SECRET). */
  secret?: string;
  /** Where people open approval links (HOIST_PUBLIC_URL). */
  publicUrl: string;
  /** Signs approval links (HOIST_LINK_SECRET); without it the robot only says where to decide. */
  linkSecret?: string;
  clock: Clock;
  timeoutMs?: number;
}

/** Approval requests and notices to a DingTalk, Feishu or WeCom group, decided through signed links. */
export class RobotNotifier implements ChatNotifier {
  constructor(private readonly opts: RobotNotifierOptions) {}

  async approvalRequested(req: ApprovalRequest): Promise<void> {
    const links = this.opts.linkSecret ? await this.links(req, this.opts.linkSecret) : [];
    await this.send(robotApprovalMessage(req, links));
  }

  async notify(notice: Notice): Promise<void> {
    await this.send(robotNoticeMessage(notice));
  }

  /** One approve and one reject link per named approver, or one pair bound to ANYONE; each valid until the gate expires. */
  private async links(req: ApprovalRequest, secret: string): Promise<ApproverLinks[]> {
    const approvers = req.approvers.length > 0 ? req.approvers : [ANYONE];
    const link = async (approver: string, decision: "approve" | "reject") =>
      linkUrl(this.opts.publicUrl, await signLink({ run: req.runId, stage: req.stage, decision, approver, exp: req.expiresAt, nonce: newNonce() }, secret));
    return Promise.all(approvers.map(async (approver) => ({ approver, approve: await link(approver, "approve"), reject: await link(approver, "reject") })));
  }

  private send(message: Parameters<typeof sendRobot>[3]): Promise<void> {
    const { kind, url, secret, clock, timeoutMs } = this.opts;
    return sendRobot(kind, url, secret, message, { now: clock.now(), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  }
}
