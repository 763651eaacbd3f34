// Shared set-up for the OAuth tests: a proxy (with its GitLab stand-in) whose zoom client is
// an OAuth application, the stand-in as the approvers' OpenID provider, and the approver's
// browser walk through sign-in and consent driven with fetch and a one-cookie jar.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type AuditLine, type Harness } from '../support/harness.ts';
import { freePort } from '../support/redis-server.ts';

export const ZOOM_REDIRECT = 'https://applications.zoom.us/addon/gitlab/authorization';

export interface OAuthProxy {
  h: Harness;
  url: string;
  clientId: string;
  clientSecret: string;
  close: () => Promise<void>;
}

export async function startOAuthProxy(opts: { redisUrl?: string; jwtSecret?: string; clientSecret?: string; requirePkce?: boolean; approvers?: string } = {}): Promise<OAuthProxy> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const clientSecret = opts.clientSecret ?? randomBytes(32).toString('base64url');
  const gitlabAppSecret = randomBytes(32).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'gsp-oauth-'));
  const clientId = 'zoom-chatbot';
  const h = await startHarness({
    policies: {
      'zoom.yaml': `clients:
  zoom:
    description: Zoom GitLab chatbot
    extends: presets/zoom
    settings: { webhook_url: "https://hooks.zoom.example/gitlab/" }
    oauth:
      client_id: ${clientId}
      client_secret_sha256: ${createHash('sha256').update(clientSecret).digest('hex')}
      redirect_uris: [${ZOOM_REDIRECT}]
      access_token_ttl: 2h
      refresh_token_ttl: 90d
      require_pkce: ${opts.requirePkce ?? false}
  packit:
    allow: [GET /api/v4/projects/:id]
`,
    },
    env: {
      PORT: String(port), PUBLIC_URL: url,
      OAUTH_GITLAB_CLIENT_ID: 'proxy-app', OAUTH_GITLAB_CLIENT_SECRET: gitlabAppSecret,
      OAUTH_APPROVERS: opts.approvers ?? 'alice, group:acme/platform:maintainer',
      ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : { SQLITE_FILE: join(dir, 'state.sqlite') }),
      ...(opts.jwtSecret ? { PROXY_JWT_SECRET: opts.jwtSecret } : {}),
    },
  });
  h.standin.oidc.registerApp({ clientId: 'proxy-app', secret: gitlabAppSecret, redirectUri: `${url}/oauth/approver/callback` });
  h.standin.oidc.addUser({ id: 7, username: 'alice' });
  h.standin.oidc.addUser({ id: 8, username: 'mallory' });
  h.standin.oidc.addUser({ id: 9, username: 'bob' });
  h.standin.oidc.addMember('acme/platform', 9, 40);
  h.standin.oidc.addMember('acme/platform', 8, 30);
  return {
    h, url, clientId, clientSecret,
    close: async () => {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface BrowserResult {
  /** Where the proxy finally sent the browser (the vendor's redirect URI with code or error). */
  location: string;
  /** The consent page's HTML and headers, when it was shown. */
  consent?: { html: string; headers: Headers };
}

/** The approver's browser: authorize URL -> GitLab sign-in as `username` -> consent -> decision. */
export async function approveInBrowser(authorizeUrl: string, username: string, decision: 'approve' | 'deny' = 'approve', tamper?: 'wrong-csrf' | 'cross-site'): Promise<BrowserResult> {
  let cookie = '';
  const go = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) } });
    const set = res.headers.get('set-cookie');
    if (set) cookie = set.split(';')[0]!.endsWith('=') ? '' : set.split(';')[0]!;
    return res;
  };
  const start = await go(authorizeUrl);
  if (start.status !== 302) throw new Error(`authorize answered ${start.status}`);
  const signIn = new URL(start.headers.get('location')!);
  if (!signIn.pathname.endsWith('/oauth/authorize') || signIn.origin === new URL(authorizeUrl).origin) return { location: signIn.toString() };
  // GitLab's sign-in page: the stand-in's form posts the request back with the username.
  const form = new URLSearchParams(signIn.searchParams);
  form.set('username', username);
  const signedIn = await fetch(signIn, { method: 'POST', body: form, redirect: 'manual' });
  const callback = await go(signedIn.headers.get('location')!);
  const next = callback.headers.get('location')!;
  if (callback.status !== 303) return { location: next };
  const consentRes = await go(new URL(next, authorizeUrl).toString());
  const html = await consentRes.text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const origin = new URL(authorizeUrl).origin;
  const decided = await go(new URL(next, authorizeUrl).toString(), {
    method: 'POST',
    body: new URLSearchParams({ csrf: tamper === 'wrong-csrf' ? `${csrf}x` : csrf, decision }),
    headers: tamper === 'cross-site' ? { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } : { origin, 'sec-fetch-site': 'same-origin' },
  });
  return { location: decided.headers.get('location') ?? `status ${decided.status}`, consent: { html, headers: consentRes.headers } };
}

/** Waits for the audit line that matches (written when its response has ended): an event,
 *  not a clock; the harness's guard only fails a hung test. */
export function auditLine(p: OAuthProxy, match: (line: AuditLine) => boolean): Promise<AuditLine> {
  return p.h.waitForAuditLine(match, 'a matching audit line');
}
