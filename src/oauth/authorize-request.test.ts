import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../policy/load.ts';
import { checkAuthorizationRequest, redirectWith } from './authorize-request.ts';

const sha = createHash('sha256').update('x'.repeat(40)).digest('hex');
const policy = compilePolicy([{ display: 'p.yaml', text: `clients:
  one:
    allow: [GET /api/v4/user]
    oauth: { client_id: one, client_secret_sha256: ${sha}, redirect_uris: [https://v.example/cb] }
  two:
    allow: [GET /api/v4/user]
    oauth: { client_id: two, client_secret_sha256: ${sha}, redirect_uris: [https://v.example/a, https://v.example/b?x=1], require_pkce: true }
  off:
    disabled: true
    oauth: { client_id: off, client_secret_sha256: ${sha}, redirect_uris: [https://v.example/cb] }
` }]);
const check = (q: string) => checkAuthorizationRequest(policy, q);
const challenge = createHash('sha256').update('v'.repeat(43)).digest('base64url');

describe('GET /oauth/authorize checks', () => {
  it('never redirects for an unknown or disabled client, a foreign, missing-with-several or repeated redirect_uri', () => {
    for (const q of ['client_id=nobody&response_type=code', 'client_id=off&response_type=code',
      'client_id=one&redirect_uri=https%3A%2F%2Fv.example%2Fcb%2F&response_type=code', 'client_id=two&response_type=code',
      'client_id=one&redirect_uri=https%3A%2F%2Fv.example%2Fcb&redirect_uri=https%3A%2F%2Fevil.example&response_type=code',
      'client_id=one&client_id=two&response_type=code']) {
      expect(check(q).kind, q).toBe('page');
    }
  });

  it('uses the only registered URI when none is sent, and redirects other errors there with state', () => {
    const ok = check('client_id=one&response_type=code&state=s');
    expect(ok).toMatchObject({ kind: 'ok', request: { redirectUri: 'https://v.example/cb', redirectUriSent: false, scope: 'api', state: 's' } });
    expect(check('client_id=one&response_type=code&state=s&state=t')).toMatchObject({ kind: 'redirect', error: 'invalid_request' });
    expect(check('client_id=one&response_type=code&scope=api+sudo')).toMatchObject({ kind: 'redirect', error: 'invalid_scope' });
    expect(check('client_id=one&response_type=token')).toMatchObject({ kind: 'redirect', error: 'unsupported_response_type' });
  });

  it('honours PKCE S256 only, and requires it when registered', () => {
    const two = 'client_id=two&response_type=code&redirect_uri=https%3A%2F%2Fv.example%2Fb%3Fx%3D1';
    expect(check(two)).toMatchObject({ kind: 'redirect', error: 'invalid_request', redirectUri: 'https://v.example/b?x=1' });
    expect(check(`${two}&code_challenge=${challenge}`)).toMatchObject({ kind: 'redirect', error: 'invalid_request' });
    expect(check(`${two}&code_challenge=${challenge}&code_challenge_method=plain`)).toMatchObject({ kind: 'redirect', error: 'invalid_request' });
    expect(check(`${two}&code_challenge=${challenge}&code_challenge_method=S256`)).toMatchObject({ kind: 'ok', request: { codeChallenge: challenge } });
  });

  it('keeps the redirect URI\'s own query when adding the response', () => {
    expect(redirectWith('https://v.example/b?x=1', { code: 'c', state: undefined })).toBe('https://v.example/b?x=1&code=c');
  });
});
