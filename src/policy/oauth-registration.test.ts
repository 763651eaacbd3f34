import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compilePolicy, PolicyError } from './load.ts';
import { redirectUriProblem } from './oauth-registration.ts';

const dir = mkdtempSync(join(tmpdir(), 'gsp-reg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha = createHash('sha256').update(randomBytes(32)).digest('hex');

function problems(oauth: string, more = ''): string[] {
  const text = `clients:\n  zoom:\n    allow: [GET /api/v4/user]\n    oauth:\n${oauth.replace(/^/gm, '      ')}\n${more}`;
  try {
    compilePolicy([{ display: 'p.yaml', text }]);
    return [];
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    return err.problems.map((p) => `${p.line}: ${p.message}`);
  }
}

describe('oauth: in the policy', () => {
  it('accepts a registration and keeps only the secret\'s hash', () => {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${randomBytes(24).toString('hex')}\n`);
    const policy = compilePolicy([{ display: 'p.yaml', text: `clients:\n  zoom:\n    allow: [GET /api/v4/user]\n    oauth:\n      client_id: zoom-chatbot\n      client_secret_file: ${secretFile}\n      redirect_uris: [https://applications.zoom.us/addon/gitlab/authorization, http://127.0.0.1:9/cb]\n      access_token_ttl: 1h\n` }]);
    const reg = policy.clients.get('zoom')!.oauth!;
    expect(reg).toMatchObject({ clientId: 'zoom-chatbot', accessTokenTtlS: 3600, refreshTokenTtlS: 90 * 86400, requirePkce: false, source: 'p.yaml:5' });
    expect(reg.secretSha256).toHaveLength(32);
    expect(JSON.stringify(policy.clients.get('zoom'))).not.toContain('secret-value');
  });

  it('requires a secret, long enough, from one source', () => {
    expect(problems('client_id: z\nredirect_uris: [https://v.example/cb]')).toEqual(['5: oauth: a client secret is required: client_secret_file or client_secret_sha256']);
    const short = join(dir, 'short');
    writeFileSync(short, 'x'.repeat(31));
    expect(problems(`client_id: z\nclient_secret_file: ${short}\nredirect_uris: [https://v.example/cb]`)[0]).toContain('shorter than 32 characters');
    expect(problems(`client_id: z\nclient_secret_file: ${short}\nclient_secret_sha256: ${sha}\nredirect_uris: [https://v.example/cb]`)[0]).toContain('not both');
    expect(problems('client_id: z\nclient_secret_file: relative/path\nredirect_uris: [https://v.example/cb]')[0]).toContain('absolute path');
    expect(problems('client_id: z\nclient_secret_sha256: abc\nredirect_uris: [https://v.example/cb]')[0]).toContain('64 lower-case hex');
  });

  it('refuses redirect URIs that are not https (except loopback), wildcards and fragments', () => {
    const found = problems(`client_id: z\nclient_secret_sha256: ${sha}\nredirect_uris:\n  - http://vendor.example/cb\n  - https://*.vendor.example/cb\n  - https://vendor.example/cb#x\n  - https://vendor.example/ok`);
    expect(found).toEqual([
      '8: oauth.redirect_uris: http://vendor.example/cb must be https (http only on a loopback address)',
      '9: oauth.redirect_uris: https://*.vendor.example/cb must not contain a wildcard',
      '10: oauth.redirect_uris: https://vendor.example/cb#x must not have a fragment (RFC 6749 3.1.2)',
    ]);
    expect(redirectUriProblem('http://localhost:8080/cb')).toBeUndefined();
    expect(redirectUriProblem('http://[::1]/cb')).toBeUndefined();
    expect(redirectUriProblem('https://user:pw@vendor.example/cb')).toContain('credentials');
    expect(redirectUriProblem('javascript:alert(1)')).toContain('https');
  });

  it('refuses a client_id used by two clients, and unknown keys', () => {
    const two = problems(`client_id: same\nclient_secret_sha256: ${sha}\nredirect_uris: [https://v.example/cb]`,
      `  calero:\n    allow: [GET /api/v4/user]\n    oauth:\n      client_id: same\n      client_secret_sha256: ${sha}\n      redirect_uris: [https://v.example/cb]\n`);
    expect(two).toEqual(['11: oauth.client_id "same" is already used by client "zoom" (p.yaml:5)']);
    expect(problems(`client_id: z\nclient_secret_sha256: ${sha}\nredirect_uris: [https://v.example/cb]\nscopes: [api]`)).toEqual(['8: unknown key "scopes"']);
    expect(problems(`client_id: z\nclient_secret_sha256: ${sha}\nredirect_uris: [https://v.example/cb]\naccess_token_ttl: 2d`)[0]).toContain('at most 24h');
  });
});
