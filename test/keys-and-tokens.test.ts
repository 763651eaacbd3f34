// Token lifetime bounds, signing-key rotation with overlap (HS256 key directories and lists,
// public-key directories, kid), the configurable clock tolerance, the identity of expired and
// revoked tokens in the audit line and metrics, and the `token`/`check` messages that say what
// was expected.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint } from '../src/auth/mint.ts';
import { startGitLabStandIn, type StandIn } from './support/gitlab-standin.ts';
import { send, startRig, waitFor, type Rig } from './support/ops.ts';

const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
const work = mkdtempSync(join(tmpdir(), 'gsp-keys-'));
const POLICY = 'clients:\n  packit:\n    revoked_jti: [revoked-1]\n    allow:\n      - GET /api/v4/projects/:id\n';
const realToken = `glpat-${randomBytes(10).toString('hex')}`;
const secret = (): string => randomBytes(32).toString('base64url');

let standin: StandIn;
beforeAll(async () => {
  standin = await startGitLabStandIn({ validTokens: [realToken] });
});
afterAll(async () => {
  await standin.close();
  rmSync(work, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string>): { code: number | null; stdout: string; stderr: string } {
  const policies = join(work, 'cli-policies');
  mkdirSync(policies, { recursive: true });
  writeFileSync(join(policies, 'packit.yaml'), POLICY);
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'] ?? '', POLICY_DIR: policies, ...env }, encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TIMEOUT = 90_000;
const get = (rig: Rig, jwt: string): Promise<number> => send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } }).then((r) => r.status);

describe('token: lifetime bounds, --json, and what --key expects', { timeout: TIMEOUT }, () => {
  const env = { PROXY_JWT_SECRET: secret() };

  it('refuses an --expires-in beyond MAX_TOKEN_TTL (default one year)', () => {
    const tooLong = cli(['token', '--client', 'packit', '--expires-in', '400d'], env);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr.trim()).toBe('--expires-in 400d is longer than MAX_TOKEN_TTL (31536000 s); mint a shorter token or raise MAX_TOKEN_TTL');
    expect(tooLong.stdout).toBe('');
    expect(cli(['token', '--client', 'packit', '--expires-in', '400d'], { ...env, MAX_TOKEN_TTL: '500d' }).code).toBe(0);
    expect(cli(['token', '--client', 'packit', '--expires-in', '2h'], { ...env, MAX_TOKEN_TTL: '1h' }).code).toBe(2);
    expect(cli(['token', '--client', 'packit'], { ...env, MAX_TOKEN_TTL: 'forever' }).stderr.trim()).toMatch(/^configuration error: MAX_TOKEN_TTL: bad duration/);
  });

  it('prints the jti and expiry with --json, for the revocation list', () => {
    const r = cli(['token', '--client', 'packit', '--expires-in', '30d', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { token: string; jti: string; exp: number; expires_at: string; issued_at: string; client: string };
    expect(out.client).toBe('packit');
    expect(out.jti).toMatch(/^[0-9a-f-]{36}$/);
    const payload = JSON.parse(Buffer.from(out.token.split('.')[1]!, 'base64url').toString()) as { jti: string; exp: number; iat: number };
    expect(payload.jti).toBe(out.jti);
    expect(payload.exp).toBe(out.exp);
    expect(payload.exp - payload.iat).toBe(30 * 86400);
    expect(Date.parse(out.expires_at)).toBe(out.exp * 1000);
    expect(cli(['token', '--client', 'packit', '--jti', 'mine-1', '--json'], env).stdout).toContain('"jti":"mine-1"');
  });

  it('says which kind of key --key expected', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const files = {
      public: [publicKey.export({ type: 'spki', format: 'pem' }) as string, /--key: \S+ holds a public key; expected a PEM private key: RSA \(2048 bits or more, RS256\), EC P-256 \(ES256\) or Ed25519 \(EdDSA\)/],
      secret: [`${secret()}\n`, /--key: \S+ is not PEM; expected a PEM private key.*An HS256 secret is not a --key: set PROXY_JWT_SECRET_FILE instead/],
      p384: [privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, /--key: \S+: EC keys must use the P-256 curve \(ES256\); expected a PEM private key/],
    } as const;
    for (const [name, [content, message]] of Object.entries(files)) {
      const file = join(work, `${name}.pem`);
      writeFileSync(file, content);
      const r = cli(['token', '--client', 'packit', '--key', file], {});
      expect(r.code, name).toBe(2);
      expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(r.stderr, name).toMatch(message);
      expect(r.stderr, name).not.toContain(content.trim().split('\n')[1] ?? content.trim());
    }
  });
});

describe('check: messages that point at the fix', { timeout: TIMEOUT }, () => {
  it('suggests the nearest key, says when a file is empty, and names the closest rule for remove:', () => {
    const dir = join(work, 'check');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'a.yaml'), 'clients:\n  a:\n    alow:\n      - GET /api/v4/projects/:id\n');
    writeFileSync(join(dir, 'b.yaml'), '');
    writeFileSync(join(dir, 'c.yaml'), 'clients:\n  c:\n    extends: presets/glean-readonly\n    remove:\n      - GET /api/v4/projects/:id/repository/tre\n    allow:\n      - method: GET\n        pth: /api/v4/projects\n');
    const r = spawnSync(process.execPath, [CLI, 'check', '--policies', dir], { encoding: 'utf8', cwd: work });
    expect(r.status).toBe(1);
    expect(r.stdout.trim().split('\n').slice(0, 2)).toEqual([
      'check/a.yaml:3:5 unknown key "alow"; did you mean "allow"?',
      'check/b.yaml:1:1 the file is empty: a policy file is a "clients:" map with one entry per client (docs/policy.md)',
    ]);
    expect(r.stdout).toContain('"GET /api/v4/projects/:id/repository/tre" is not a rule of preset presets/glean-readonly');
    expect(r.stdout).toContain('; the closest rule is "GET /api/v4/projects/:id/repository/tree"');
    expect(r.stdout).toMatch(/unknown key "pth" in a rule \(method, path, [a-z_, ]+\); did you mean "path"\?/);
  });
});

describe('signing keys: rotation with overlap', { timeout: TIMEOUT }, () => {
  it('verifies every HS256 key of a directory, mints with the newest, and drops a key when its file goes', async () => {
    const keys = join(work, 'hs-keys');
    mkdirSync(keys);
    writeFileSync(join(keys, '2026-06'), `${secret()}\n`);
    const rig = await startRig({ policies: { 'p.yaml': POLICY }, env: { GITLAB_URL: standin.url, GITLAB_TOKEN: realToken, PROXY_JWT_SECRET: '', PROXY_JWT_SECRET_FILE: keys } });
    try {
      const mintWith = async (): Promise<string> => {
        const r = cli(['token', '--client', 'packit'], { PROXY_JWT_SECRET_FILE: keys });
        expect(r.code, r.stderr).toBe(0);
        return r.stdout.trim();
      };
      const old = await mintWith();
      expect(decodeProtectedHeader(old).kid).toBe('2026-06');
      expect(await get(rig, old)).toBe(200);
      // Step 1: add the new key beside the old one and reload: both verify.
      writeFileSync(join(keys, '2026-12'), `${secret()}\n`);
      expect(rig.proxy.reloadNow('api')).toMatchObject({ ok: true, changed: ['jwt-keys'] });
      const next = await mintWith();
      expect(decodeProtectedHeader(next).kid).toBe('2026-12');
      expect(await get(rig, old)).toBe(200);
      expect(await get(rig, next)).toBe(200);
      // A token with a kid no key has is tried against every key: still only a real key verifies.
      const forged = (await mint({ client: 'packit', audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 60, kid: '2026-12', key: { kind: 'secret', secret: new TextEncoder().encode(secret()) } })).token;
      expect(await get(rig, forged)).toBe(401);
      // Step 3: remove the old key: its tokens stop working, the new ones go on.
      unlinkSync(join(keys, '2026-06'));
      expect(rig.proxy.reloadNow('api')).toMatchObject({ ok: true });
      expect(await get(rig, old)).toBe(401);
      expect(await get(rig, next)).toBe(200);
      await waitFor(() => rig.auditLines().filter((l) => l['status'] === 401).length === 2, 'two 401 audit lines');
      expect(rig.auditLines().filter((l) => l['status'] === 401).map((l) => l['reason'])).toEqual(['bad-signature', 'bad-signature']);
    } finally {
      await rig.close();
    }
  });

  it('takes a comma list of HS256 key files, and of public keys (each kid its file name)', async () => {
    const [a, b] = [join(work, 'list-a.key'), join(work, 'list-b.key')];
    writeFileSync(a, secret());
    writeFileSync(b, secret());
    const pubDir = join(work, 'pub');
    mkdirSync(pubDir);
    const pairs = ['ec-1', 'ed-2'].map((kid) => {
      const pair = kid.startsWith('ec') ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
      writeFileSync(join(pubDir, `${kid}.pem`), pair.publicKey.export({ type: 'spki', format: 'pem' }) as string);
      const privateFile = join(work, `${kid}.pem`);
      writeFileSync(privateFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
      return privateFile;
    });
    const rig = await startRig({
      policies: { 'p.yaml': POLICY },
      env: { GITLAB_URL: standin.url, GITLAB_TOKEN: realToken, PROXY_JWT_SECRET: '', PROXY_JWT_SECRET_FILE: `${a},${b}`, PROXY_JWT_PUBLIC_KEY_FILE: pubDir },
    });
    try {
      for (const kid of ['list-a', 'list-b']) {
        const r = cli(['token', '--client', 'packit', '--kid', kid], { PROXY_JWT_SECRET_FILE: `${a},${b}` });
        expect(decodeProtectedHeader(r.stdout.trim()).kid).toBe(kid);
        expect(await get(rig, r.stdout.trim()), kid).toBe(200);
      }
      expect(cli(['token', '--client', 'packit', '--kid', 'nope'], { PROXY_JWT_SECRET_FILE: `${a},${b}` }).stderr.trim()).toBe('--kid: no key "nope" in PROXY_JWT_SECRET_FILE (list-a, list-b)');
      for (const file of pairs) {
        const r = cli(['token', '--client', 'packit', '--key', file], {});
        expect(r.code, r.stderr).toBe(0);
        const header = decodeProtectedHeader(r.stdout.trim());
        expect(header.kid).toBe(file.endsWith('ec-1.pem') ? 'ec-1' : 'ed-2');
        expect(await get(rig, r.stdout.trim()), file).toBe(200);
      }
    } finally {
      await rig.close();
    }
  });
});

describe('clock tolerance and the identity of refused tokens', () => {
  let rig: Rig;
  afterAll(async () => rig?.close());

  it('refuses a token expired longer ago than PROXY_JWT_CLOCK_TOLERANCE_S, and audits whose it was', async () => {
    rig = await startRig({ policies: { 'p.yaml': POLICY }, env: { GITLAB_URL: standin.url, GITLAB_TOKEN: realToken, PROXY_JWT_CLOCK_TOLERANCE_S: '10' } });
    const key = { kind: 'secret' as const, secret: new TextEncoder().encode(rig.jwtSecret) };
    const expiredAgo = (s: number, jti: string): Promise<string> =>
      mint({ client: 'packit', audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 60, jti, key, now: Date.now() - (60 + s) * 1000 }).then((m) => m.token);
    expect(await get(rig, await expiredAgo(3, 'within-tolerance'))).toBe(200);
    expect(await get(rig, await expiredAgo(30, 'expired-1'))).toBe(401);
    const revoked = (await mint({ client: 'packit', audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 60, jti: 'revoked-1', key })).token;
    expect(await get(rig, revoked)).toBe(401);
    // The audit writer batches lines for up to 20 ms: wait for the two lines.
    await waitFor(() => rig.auditLines().filter((l) => l['status'] === 401).length === 2, 'two 401 audit lines');
    const refused = rig.auditLines().filter((l) => l['status'] === 401);
    expect(refused.map((l) => [l['client'], l['jti'], l['reason']])).toEqual([
      ['packit', 'expired-1', 'token-expired'],
      ['packit', 'revoked-1', 'token-revoked'],
    ]);
    expect(await rig.metric('gsp_requests_total', { client: 'packit', decision: 'deny', status: '401' })).toBe(2);
    expect(await rig.metric('gsp_denials_total', { client: 'packit', reason: 'token-expired' })).toBe(1);
    // A token of a client the policy does not have stays anonymous (metric labels stay bounded).
    const stranger = (await mint({ client: 'stranger', audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 60, key, now: Date.now() - 120_000 })).token;
    expect(await get(rig, stranger)).toBe(401);
    await waitFor(() => rig.auditLines().length === 4, 'the fourth audit line');
    expect(rig.auditLines().at(-1)).toMatchObject({ client: null, jti: null, reason: 'token-expired' });
  });
});
