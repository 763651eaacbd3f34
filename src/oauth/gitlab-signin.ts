// The approver's sign-in: the proxy is itself a GitLab OAuth application (scopes openid
// read_user). The browser goes to GitLab's /oauth/authorize (with PKCE and a state), comes back
// to PUBLIC_URL/oauth/approver/callback, and the proxy exchanges the code at GitLab's
// /oauth/token and reads who signed in from /oauth/userinfo (OpenID Connect: "sub" is the user
// id, config/initializers/doorkeeper_openid_connect.rb `subject do |user| user.id`; "nickname"
// is "the user's GitLab username", doc/integration/openid_connect_provider.md).
// The approver's GitLab token is used for that one call and then dropped.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { MembershipLookup, SignedInUser } from './approvers.ts';

export interface GitLabSignIn {
  /** Where to send the browser. */
  authorizeUrl(state: string, codeChallenge: string, nonce: string): string;
  /** Exchanges the code and answers who signed in; throws when GitLab does not agree. */
  signedInUser(code: string, codeVerifier: string): Promise<SignedInUser>;
  /** Group membership, asked with the proxy's own token. */
  membership: MembershipLookup;
}

export interface SignInSettings {
  /** GitLab as the proxy reaches it (GITLAB_URL), with its relative root. */
  gitlabUrl: URL;
  gitlabRoot: string;
  /** GitLab as the browser reaches it (OAUTH_GITLAB_URL or GITLAB_URL). */
  browserUrl: URL;
  clientId: string;
  clientSecret: string;
  /** PUBLIC_URL + /oauth/approver/callback */
  callbackUrl: string;
  gitlabToken: () => string;
  ca: string | undefined;
  timeoutMs: number;
}

export function gitlabSignIn(s: SignInSettings): GitLabSignIn {
  const call = (method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; json: unknown }> =>
    gitlabCall(s, method, path, headers, body);
  return {
    authorizeUrl(state, codeChallenge, nonce) {
      const url = new URL(`${s.browserUrl.pathname.replace(/\/+$/, '')}/oauth/authorize`, s.browserUrl.origin);
      url.search = new URLSearchParams({
        client_id: s.clientId, redirect_uri: s.callbackUrl, response_type: 'code', scope: 'openid read_user',
        state, nonce, code_challenge: codeChallenge, code_challenge_method: 'S256',
      }).toString();
      return url.toString();
    },
    async signedInUser(code, codeVerifier) {
      const form = new URLSearchParams({
        grant_type: 'authorization_code', code, redirect_uri: s.callbackUrl, code_verifier: codeVerifier,
        client_id: s.clientId, client_secret: s.clientSecret,
      }).toString();
      const token = await call('POST', '/oauth/token', { 'content-type': 'application/x-www-form-urlencoded' }, form);
      const accessToken = (token.json as { access_token?: unknown } | null)?.access_token;
      if (token.status !== 200 || typeof accessToken !== 'string') throw new Error(`GitLab refused the sign-in code (${token.status})`);
      const info = await call('GET', '/oauth/userinfo', { authorization: `Bearer ${accessToken}` });
      const claims = info.json as { sub?: unknown; nickname?: unknown } | null;
      const id = Number(claims?.sub);
      if (info.status !== 200 || !Number.isSafeInteger(id) || typeof claims?.nickname !== 'string') throw new Error(`GitLab's userinfo did not name the user (${info.status})`);
      return { id, username: claims.nickname };
    },
    async membership(group, userId) {
      const res = await call('GET', `/api/v4/groups/${encodeURIComponent(group)}/members/all/${userId}`, { 'private-token': s.gitlabToken() });
      if (res.status === 404) return undefined;
      const m = res.json as { access_level?: unknown; state?: unknown } | null;
      if (res.status !== 200 || typeof m?.access_level !== 'number') throw new Error(`GitLab could not answer group membership (${res.status})`);
      return { accessLevel: m.access_level, state: typeof m.state === 'string' ? m.state : 'active' };
    },
  };
}

function gitlabCall(s: SignInSettings, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; json: unknown }> {
  const url = new URL(s.gitlabRoot + path, s.gitlabUrl.origin);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method, timeout: s.timeoutMs, agent: false,
      headers: { accept: 'application/json', ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
      ...(s.ca ? { ca: s.ca } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 1 << 20) req.destroy(new Error('GitLab answer too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        let json: unknown = null;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          // not JSON: json stays null and the caller refuses
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('GitLab did not answer in time')));
    req.on('error', reject);
    req.end(body);
  });
}
