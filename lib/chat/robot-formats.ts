import type { RobotButtonKind, RobotMessage } from "./robot-messages.ts";

/**
 * A RobotMessage in each vendor's webhook body (signatures are added when sending):
 *
 * - DingTalk custom robot: `actionCard` with one `btns` entry per link, `markdown` without links.
 * - Feishu/Lark custom bot: an `interactive` card, its buttons opening the links (a custom bot
 *   cannot receive callbacks, so a button can only be a link).
 * - WeCom group robot: `markdown` with the links inline; WeCom refuses content over 4096 bytes,
 *   so the links go on in further messages when they do not fit in one.
 */

export const ROBOT_KINDS = ["dingtalk", "feishu", "wecom"] as const;
export type RobotKind = (typeof ROBOT_KINDS)[number];

/** WeCom's limit on `markdown.content`, UTF-8 bytes. */
export const WECOM_MAX_BYTES = 4096;

export function robotBodies(kind: RobotKind, message: RobotMessage): Record<string, unknown>[] {
  switch (kind) {
    case "dingtalk":
      return [dingTalkBody(message)];
    case "feishu":
      return [feishuBody(message)];
    case "wecom":
      return weComBodies(message);
  }
}

function dingTalkBody(m: RobotMessage): Record<string, unknown> {
  // DingTalk's markdown needs a blank line for a line break.
  const text = [`### ${m.title}`, ...m.lines].join("\n\n");
  if (m.buttons.length === 0) return { msgtype: "markdown", markdown: { title: m.title, text } };
  return { msgtype: "actionCard", actionCard: { title: m.title, text, btnOrientation: "0", btns: m.buttons.map((b) => ({ title: b.label, actionURL: b.url })) } };
}

const FEISHU_BUTTON_TYPES: { readonly [K in RobotButtonKind]: string } = { approve: "primary", reject: "danger", view: "default" };

function feishuBody(m: RobotMessage): Record<string, unknown> {
  const elements: unknown[] = [{ tag: "div", text: { tag: "lark_md", content: m.lines.join("\n") } }];
  if (m.buttons.length > 0)
    elements.push({
      tag: "action",
      actions: m.buttons.map((b) => ({ tag: "button", text: { tag: "plain_text", content: b.label }, type: FEISHU_BUTTON_TYPES[b.kind], url: b.url })),
    });
  return { msg_type: "interactive", card: { config: { wide_screen_mode: true }, header: { title: { tag: "plain_text", content: m.title } }, elements } };
}

function weComBodies(m: RobotMessage): Record<string, unknown>[] {
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  const contents: string[] = [];
  let current = [`**${m.title}**`, ...m.lines].join("\n");
  for (const b of m.buttons) {
    const piece = `[${b.label}](${b.url})`;
    if (bytes(`${current}\n${piece}`) > WECOM_MAX_BYTES) {
      contents.push(current);
      current = `**${m.title}** (continued)`;
    }
    current = `${current}\n${piece}`;
  }
  contents.push(current);
  return contents.map((content) => ({ msgtype: "markdown", markdown: { content } }));
}
