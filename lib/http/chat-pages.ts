import type { LinkClaims } from "../chat/links.ts";

/**
 * The small HTML pages an approval link opens. Everything shown is escaped; the pages load
 * nothing, may not be framed (a framed confirm button could be clicked by deception), and are
 * never cached or sent as a referrer, since their URL is the credential.
 */

export const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
  "x-robots-tag": "noindex, nofollow",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
} as const;

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Hoist</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}button{font:inherit;padding:.5rem 1.5rem;cursor:pointer}</style>
</head><body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>`;
}

/** Asks before deciding: a GET only shows this, so link previews and scanners decide nothing. */
export function confirmPage(claims: LinkClaims): string {
  const verb = claims.decision === "approve" ? "Approve" : "Reject";
  const question = `${verb} run ${claims.run} stage ${claims.stage} as ${claims.approver}?`;
  return page(
    `${verb} this release?`,
    `<p>${escapeHtml(question)}</p>
<form method="post"><button type="submit">${verb}</button></form>
<p><small>This link works once, until ${escapeHtml(new Date(claims.exp).toISOString())}.</small></p>`,
  );
}

/** An outcome or a refusal, as one sentence under a title. */
export function messagePage(title: string, text: string): string {
  return page(title, `<p>${escapeHtml(text)}</p>`);
}
