// The two HTML pages the proxy renders: the consent page and the error page. Server-rendered
// with hono/html (every interpolation is escaped), no scripts at all, one inline style block
// allowed by a per-response nonce, readable on a phone (viewport, one column, large buttons).
// The strict Content-Security-Policy sent with them is in pageHeaders().
import { html } from 'hono/html';
import type { AccessSection } from './access-summary.ts';

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1rem;color:#1f1e24;background:#fbfafd}
main{max-width:36rem;margin:0 auto}
h1{font-size:1.4rem;margin:.5rem 0 1rem}
h2{font-size:1rem;margin:1rem 0 .25rem}
ul{padding-left:1.2rem;margin:.25rem 0}
li{overflow-wrap:anywhere}
code{font-size:.9rem}
.box{background:#fff;border:1px solid #dcdcde;border-radius:.5rem;padding:1rem}
.who{color:#535158}
.buttons{display:flex;gap:.75rem;margin-top:1.25rem;flex-wrap:wrap}
button{font-size:1rem;padding:.75rem 1.5rem;border-radius:.4rem;border:1px solid #89888d;background:#fff;flex:1 1 8rem}
button.approve{background:#1f75cb;border-color:#1f75cb;color:#fff}`;

export interface ConsentView {
  vendor: string;
  description: string | undefined;
  redirectHost: string;
  scope: string;
  sections: AccessSection[];
  approver: string;
  csrf: string;
  action: string;
  nonce: string;
}

export function consentPage(v: ConsentView): string {
  return String(html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize ${v.vendor}</title><style nonce="${v.nonce}">${STYLE}</style></head>
<body><main>
<h1>Authorize <strong>${v.vendor}</strong> to use GitLab through the proxy?</h1>
<div class="box">
${v.description ? html`<p>${v.description}</p>` : ''}
<p>After approval your browser returns to <strong>${v.redirectHost}</strong>.</p>
<p>It asks for the scopes <code>${v.scope}</code>; what it can really do is limited to:</p>
${v.sections.map((s) => html`<h2>${s.heading}</h2><ul>${s.items.map((i) => html`<li><code>${i}</code></li>`)}</ul>`)}
</div>
<p class="who">Signed in to GitLab as <strong>@${v.approver}</strong>.</p>
<form method="post" action="${v.action}">
<input type="hidden" name="csrf" value="${v.csrf}">
<div class="buttons"><button class="approve" type="submit" name="decision" value="approve">Authorize</button>
<button type="submit" name="decision" value="deny">Deny</button></div>
</form>
</main></body></html>`);
}

export function errorPage(title: string, message: string, nonce: string): string {
  return String(html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style nonce="${nonce}">${STYLE}</style></head>
<body><main><h1>${title}</h1><div class="box"><p>${message}</p></div></main></body></html>`);
}

/** Headers for every page: no scripts, nothing framed or cached, forms only to the proxy and
 *  (for the redirect after approval, which form-action also governs) the vendor's origin. */
export function pageHeaders(nonce: string, formTargets: readonly string[] = []): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': [
      "default-src 'none'", `style-src 'nonce-${nonce}'`, "img-src 'none'", "base-uri 'none'",
      `form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}`, "frame-ancestors 'none'",
    ].join('; '),
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on the
    // consent form's POST, and the Origin check would refuse it. Nothing leaks to other origins.
    'referrer-policy': 'same-origin',
    'cache-control': 'no-store',
  };
}
