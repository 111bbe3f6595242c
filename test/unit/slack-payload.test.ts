import { describe, expect, it } from "vitest";
import { BadInputError } from "../../lib/errors.ts";
import { buttonValue, parseButtonValue, parseSlackClick } from "../../lib/chat/slack-payload.ts";
import { blockActions, formBody, RUN_ID } from "../support/chat.ts";

describe("Slack's block_actions payload", () => {
  it("reads who clicked which button, where, from a real-shaped payload", () => {
    const click = parseSlackClick(formBody(blockActions()));
    expect(click).toMatchObject({ runId: RUN_ID, stage: 3, approve: true });
    expect(click.payload.user).toEqual({ id: "U0CA5", username: "amy.mcgee", name: "amy.mcgee", team_id: "T3MDE" });
    expect(click.payload.container).toEqual({ message_ts: "1548261231.000200", channel_id: "C0CA5" });
    expect(click.payload.response_url).toBe("https://hooks.slack.com/actions/T3MDE/1232321423432/D09sSasdasdAS9091209");
    expect(click.payload.message?.blocks).toHaveLength(4);
    // What Hoist does not read is dropped, the verification token with it.
    expect(click.payload).not.toHaveProperty("token");
    expect(parseSlackClick(formBody(blockActions({ approve: false, stage: 0 })))).toMatchObject({ stage: 0, approve: false });
  });

  it("round-trips a button value and refuses anything else", () => {
    expect(parseButtonValue(buttonValue(RUN_ID, 49, false))).toEqual({ runId: RUN_ID, stage: 49, approve: false });
    for (const value of [
      "",
      `${RUN_ID}|3`,
      `${RUN_ID}|3|approve|extra`,
      `${RUN_ID}|3|APPROVE`,
      `${RUN_ID}|50|approve`,
      `${RUN_ID}|03|approve`,
      `${RUN_ID}|-1|approve`,
      `${RUN_ID}|1e1|approve`,
      `not-a-run|3|approve`,
      `${RUN_ID.toUpperCase()}|3|approve`,
      `${RUN_ID}x|3|approve`,
    ])
      expect(parseButtonValue(value), value).toBeUndefined();
  });

  const hostile: [string, (p: Record<string, unknown>) => unknown][] = [
    ["another payload type", (p) => ({ ...p, type: "view_submission" })],
    ["no actions", (p) => ({ ...p, actions: [] })],
    ["a foreign button's value", (p) => ({ ...p, actions: [{ action_id: "x", value: "drop table" }] })],
    ["an oversized value", (p) => ({ ...p, actions: [{ action_id: "hoist.approve", value: `${RUN_ID}|3|approve${" ".repeat(5000)}` }] })],
    ["a user id with markup", (p) => ({ ...p, user: { id: "<!channel>" } })],
    ["an oversized user name", (p) => ({ ...p, user: { id: "U0CA5", name: "x".repeat(10_000) } })],
    ["a response_url that is not a URL", (p) => ({ ...p, response_url: "javascript:alert(1)x y" })],
    ["a message ts that is not one", (p) => ({ ...p, container: { message_ts: "now", channel_id: "C0CA5" } })],
    ["too many actions", (p) => ({ ...p, actions: Array.from({ length: 50 }, () => (p.actions as unknown[])[0]) })],
    ["an array", () => []],
    ["null", () => null],
  ];
  it.each(hostile)("refuses %s with a 400", (_, change) => {
    expect(() => parseSlackClick(formBody(change(blockActions())))).toThrow(BadInputError);
  });

  it("refuses a body without a payload field, or whose payload is not JSON", () => {
    expect(() => parseSlackClick("token=x&team_id=T1")).toThrow(/no payload field/);
    expect(() => parseSlackClick("payload=%7Bnot%20json")).toThrow(/not JSON/);
    expect(() => parseSlackClick("")).toThrow(BadInputError);
  });

  it("names the field at fault without quoting the input", () => {
    const secretish = "xoxb-should-not-be-echoed";
    expect(() => parseSlackClick(formBody({ ...blockActions(), user: { id: secretish } }))).toThrow(/user\.id/);
    try {
      parseSlackClick(formBody({ ...blockActions(), user: { id: secretish } }));
    } catch (err) {
      expect((err as Error).message).not.toContain(secretish);
    }
  });
});
