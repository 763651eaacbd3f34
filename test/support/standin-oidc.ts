// The GitLab stand-in as an OpenID provider, for the approver sign-in of the proxy's OAuth
// endpoints: GitLab's /oauth/authorize (a sign-in page with a username field and an Authorize
// button), /oauth/token (authorization_code with PKCE), /oauth/userinfo (sub, nickname), and
// GET /api/v4/groups/:id/members/all/:user_id for approver groups. Plugged into
// test/support/gitlab-standin.ts, which records every request as usual.
import { createHash, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { RecordedRequest } from './gitlab-standin.ts';

export interface OidcUser {
  id: number;
  username: string;
}

export interface StandInOidc {
  /** The proxy's application in this GitLab: its id, secret and callback. */
  registerApp(app: { clientId: string; secret: string; redirectUri: string }): void;
  addUser(user: OidcUser): void;
  /** Make a user a member of a group (full path) with an access level. */
  addMember(group: string, userId: number, accessLevel: number): void;
  /** Handles the request when it is one of the provider's; false lets the API answer. */
  handle(rec: RecordedRequest, res: ServerResponse, root: string, apiTokens: ReadonlySet<string>): boolean;
}

interface IssuedCode { username: string; redirectUri: string; challenge: string | undefined; clientId: string }

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function createStandInOidc(): StandInOidc {
  let app: { clientId: string; secret: string; redirectUri: string } | undefined;
  const users = new Map<string, OidcUser>();
  const members = new Map<string, Map<number, number>>();
  const codes = new Map<string, IssuedCode>();
  const tokens = new Map<string, string>(); // access token -> username

  const json = (res: ServerResponse, status: number, body: unknown): true => {
    const payload = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'cache-control': 'no-store' });
    res.end(payload);
    return true;
  };
  const text = (res: ServerResponse, status: number, type: string, body: string): true => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return true;
  };

  return {
    registerApp: (a) => { app = a; },
    addUser: (u) => { users.set(u.username, u); },
    addMember: (group, userId, level) => { members.set(group, (members.get(group) ?? new Map<number, number>()).set(userId, level)); },
    handle(rec, res, root, apiTokens) {
      const path = rec.path.startsWith(root) ? rec.path.slice(root.length) : rec.path;
      const q = new URLSearchParams(rec.query);
      if (path === '/oauth/authorize' && rec.method === 'GET') {
        if (!app || q.get('client_id') !== app.clientId || q.get('redirect_uri') !== app.redirectUri) {
          return text(res, 200, 'text/html', '<p>The redirect URI included is not valid.</p>');
        }
        const hidden = ['client_id', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method', 'scope']
          .map((k) => `<input type="hidden" name="${k}" value="${escape(q.get(k) ?? '')}">`).join('');
        return text(res, 200, 'text/html; charset=utf-8', `<!doctype html><title>Sign in · GitLab</title><form method="post" action="${root}/oauth/authorize">${hidden}
<label>Username <input name="username" id="username"></label><button type="submit" id="authorize">Authorize</button></form>`);
      }
      if (path === '/oauth/authorize' && rec.method === 'POST') {
        const f = new URLSearchParams(rec.body.toString('utf8'));
        const user = users.get(f.get('username') ?? '');
        if (!app || !user || f.get('client_id') !== app.clientId || f.get('redirect_uri') !== app.redirectUri) return text(res, 401, 'text/html', '<p>Invalid login or password.</p>');
        const code = randomBytes(16).toString('hex');
        codes.set(code, { username: user.username, redirectUri: app.redirectUri, challenge: f.get('code_challenge') || undefined, clientId: app.clientId });
        const to = new URL(app.redirectUri);
        to.searchParams.set('code', code);
        if (f.get('state')) to.searchParams.set('state', f.get('state')!);
        res.writeHead(302, { location: to.toString(), 'content-length': 0 });
        res.end();
        return true;
      }
      if (path === '/oauth/token' && rec.method === 'POST') {
        const f = new URLSearchParams(rec.body.toString('utf8'));
        const issued = codes.get(f.get('code') ?? '');
        codes.delete(f.get('code') ?? '');
        const verifierOk = !issued?.challenge || createHash('sha256').update(f.get('code_verifier') ?? '').digest('base64url') === issued.challenge;
        if (!app || f.get('client_id') !== app.clientId || f.get('client_secret') !== app.secret) return json(res, 401, { error: 'invalid_client' });
        if (!issued || issued.redirectUri !== f.get('redirect_uri') || !verifierOk) return json(res, 400, { error: 'invalid_grant' });
        const token = randomBytes(16).toString('hex');
        tokens.set(token, issued.username);
        return json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 7200, scope: 'openid read_user', created_at: Math.floor(Date.now() / 1000) });
      }
      if (path === '/oauth/userinfo' && rec.method === 'GET') {
        const username = tokens.get(/^Bearer (\S+)$/.exec(rec.headers.authorization ?? '')?.[1] ?? '');
        const user = username ? users.get(username) : undefined;
        if (!user) return json(res, 401, { error: 'invalid_token' });
        return json(res, 200, { sub: String(user.id), nickname: user.username, preferred_username: user.username, name: user.username });
      }
      const member = /^\/api\/v4\/groups\/([^/]+)\/members\/all\/([0-9]+)$/.exec(path);
      if (member && rec.method === 'GET') {
        const token = rec.headers['private-token'];
        if (typeof token !== 'string' || !apiTokens.has(token)) return json(res, 401, { message: '401 Unauthorized' });
        const level = members.get(decodeURIComponent(member[1]!))?.get(Number(member[2]));
        const user = [...users.values()].find((u) => u.id === Number(member[2]));
        if (level === undefined || !user) return json(res, 404, { message: '404 Not found' });
        return json(res, 200, { id: user.id, username: user.username, state: 'active', access_level: level });
      }
      return false;
    },
  };
}
