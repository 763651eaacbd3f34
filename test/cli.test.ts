// The CLI as an operator runs it: its stdout, stderr and exit code. Commands run in-process
// through main(argv, io) with only the environment given; `serve` runs as a real subprocess
// (signals, exit code).
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/cli.ts';
import { startGitLabStandIn } from './support/gitlab-standin.ts';

const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');

const run = (args: string[], env: Record<string, string> = {}) => runCli(args, { env });

function policyDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-cli-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const GOOD = `clients:
  packit:
    description: Packit
    allow:
      - GET /api/v4/projects/:id
      - GET,POST /api/v4/projects/:id/merge_requests/:iid/notes
`;

describe('check', () => {
  it('accepts a valid policy directory', async () => {
    const r = await run(['check', '--policies', policyDir({ 'a.yaml': GOOD })]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok: 1 clients, 2 rules in 1 files/);
  });

  it('reports every problem at once as file:line:col message and exits 1', async () => {
    const dir = policyDir({
      'a.yaml': `clients:
  packit:
    allow:
      - get /api/v4/projects/:id
      - GET /api/v4/projects/:id/**/notes
      - GET /api/v3/projects
    colour: blue
`,
      'b.yml': `clients:
  packit:
    allow: [GET /api/v4/user]
  zoom:
    tokens_issued_after: yesterday
    allow: ["GET /api/v4/projects//x"]
`,
      'c.yaml': 'clients: {a: 1, a: 2}\n',
    });
    const r = await run(['check', '--policies', dir]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual(expect.arrayContaining([
      expect.stringMatching(/a\.yaml:7:5 unknown key "colour"/),
      expect.stringMatching(/a\.yaml:4:9 unknown method "get"/),
      expect.stringMatching(/b\.yml:2:3 client "packit" is already defined in .*a\.yaml:2/),
      expect.stringMatching(/b\.yml:5:26 tokens_issued_after must be/),
      expect.stringMatching(/b\.yml:6:13 path has an empty segment/),
      expect.stringMatching(/c\.yaml:1:\d+ .*[Uu]nique/),
    ]));
    expect(r.stderr).toMatch(/problems? in/);
  });

  it('reports each bad rule of a valid file with its location', async () => {
    const dir = policyDir({ 'a.yaml': `clients:
  packit:
    allow:
      - get /api/v4/projects/:id
      - GET /api/v4/projects/:id/**/notes
      - GET /api/v3/projects
      - GET /api/v4/internal/check
` });
    const r = await run(['check', '--policies', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/a\.yaml:4:9 unknown method "get"/),
      expect.stringMatching(/a\.yaml:5:9 \*\* may only be the last segment/),
      expect.stringMatching(/a\.yaml:6:9 path must start with \/api\/v4\//),
      expect.stringMatching(/a\.yaml:7:9 \/api\/v4\/internal is never forwarded/),
    ]);
  });
});

describe('token', () => {
  it('prints only a token that verifies with the configured secret, audience and issuer', async () => {
    const secret = randomBytes(32).toString('hex');
    const r = await run(['token', '--client', 'packit', '--expires-in', '30d', '--jti', 'ticket-42'], {
      PROXY_JWT_SECRET: secret, PROXY_JWT_ISSUER: 'https://issuer.example.test', POLICY_DIR: policyDir({ 'a.yaml': GOOD }),
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const { payload } = await jwtVerify(r.stdout.trim(), new TextEncoder().encode(secret), {
      audience: 'gitlab-scope-proxy', issuer: 'https://issuer.example.test', algorithms: ['HS256'],
    });
    expect(payload).toMatchObject({ sub: 'packit', jti: 'ticket-42' });
    expect(payload.exp! - payload.iat!).toBe(30 * 86400);
  });

  it('signs with a private key file (--key) using the algorithm of its type', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const keyFile = join(policyDir({}), 'k.pem');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const r = await run(['token', '--client', 'zoom', '--key', keyFile]);
    expect(r.code).toBe(0);
    expect(JSON.parse(Buffer.from(r.stdout.split('.')[0]!, 'base64url').toString())).toMatchObject({ alg: 'EdDSA' });
    expect(decodeJwt(r.stdout.trim()).sub).toBe('zoom');
  });

  it('warns on stderr when the client is not in the policy', async () => {
    const r = await run(['token', '--client', 'ghost'], { PROXY_JWT_SECRET: randomBytes(32).toString('hex'), POLICY_DIR: policyDir({ 'a.yaml': GOOD }) });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/client "ghost" is not defined/);
  });

  it('exits 2 without a signing key, and with a short secret, naming the variable and never its value', async () => {
    expect((await run(['token', '--client', 'packit'])).code).toBe(2);
    const short = 'tooshort-secret-value';
    const r = await run(['token', '--client', 'packit'], { PROXY_JWT_SECRET: short });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PROXY_JWT_SECRET must be at least 32 bytes/);
    expect(r.stderr + r.stdout).not.toContain(short);
  });
});

describe('explain', () => {
  const dir = policyDir({ 'a.yaml': GOOD });
  it('prints allow with the deciding rule and its location', async () => {
    const r = await run(['explain', '--policies', dir, '--client', 'packit', 'POST', '/api/v4/projects/acme%2Fdocs/merge_requests/3/notes']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^allow\tGET,POST \/api\/v4\/projects\/:id\/merge_requests\/:iid\/notes \(.*a\.yaml:6\)/);
  });
  it('prints deny with the reason', async () => {
    expect((await run(['explain', '--policies', dir, '--client', 'packit', 'DELETE', '/api/v4/projects/5'])).stdout).toMatch(/^deny\tmethod-not-allowed/);
    expect((await run(['explain', '--policies', dir, '--client', 'packit', 'GET', '/api/v4/projects/5/../../user'])).stdout).toMatch(/^deny\tdot-segment.*\(400\)/);
    expect((await run(['explain', '--policies', dir, '--client', 'packit', 'GET', '/api/v4/user'])).stdout).toMatch(/^deny\tno-rule/);
    const unknown = await run(['explain', '--policies', dir, '--client', 'nobody', 'GET', '/api/v4/projects/5']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/^deny\tunknown-client/);
  });
});

describe('serve configuration errors', () => {
  const base = () => ({ GITLAB_URL: 'https://gitlab.example.test', GITLAB_TOKEN: `glpat-${randomBytes(10).toString('hex')}`, PROXY_JWT_SECRET: randomBytes(32).toString('hex'), POLICY_DIR: policyDir({ 'a.yaml': GOOD }), PORT: '0' });
  const cases: [string, (env: Record<string, string>) => void, RegExp][] = [
    ['GITLAB_URL missing', (e) => delete e.GITLAB_URL, /^configuration error: GITLAB_URL is required/],
    ['GITLAB_URL not a URL', (e) => (e.GITLAB_URL = 'gitlab'), /^configuration error: GITLAB_URL is not a URL/],
    ['token missing', (e) => delete e.GITLAB_TOKEN, /^configuration error: GITLAB_TOKEN \(or GITLAB_TOKEN_FILE\) is required/],
    ['token twice', (e) => (e.GITLAB_TOKEN_FILE = '/nonexistent'), /^configuration error: GITLAB_TOKEN and GITLAB_TOKEN_FILE are both set/],
    ['no JWT key', (e) => delete e.PROXY_JWT_SECRET, /^configuration error: one of PROXY_JWT_SECRET/],
    ['bad port', (e) => (e.PORT = '99999'), /^configuration error: PORT must be a whole number/],
    ['unreadable secret file', (e) => { delete e.PROXY_JWT_SECRET; e.PROXY_JWT_SECRET_FILE = '/nonexistent/secret'; }, /^configuration error: PROXY_JWT_SECRET_FILE: cannot read/],
  ];
  for (const [name, mutate, message] of cases) {
    it(`exits 2 with one line when ${name}`, async () => {
      const env = base();
      mutate(env);
      const r = await run(['serve'], env);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      if (env.GITLAB_TOKEN) expect(r.stderr).not.toContain(env.GITLAB_TOKEN);
      if (env.PROXY_JWT_SECRET) expect(r.stderr).not.toContain(env.PROXY_JWT_SECRET);
    });
  }
});

describe('serve', () => {
  it('starts from the environment, serves, and exits 0 on SIGTERM', async () => {
    const standin = await startGitLabStandIn({ validTokens: ['unused'] });
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: { PATH: process.env.PATH ?? '', GITLAB_URL: standin.url, GITLAB_TOKEN: randomBytes(16).toString('hex'), PROXY_JWT_SECRET: randomBytes(32).toString('hex'), POLICY_DIR: policyDir({ 'a.yaml': GOOD }), PORT: '0', HOST: '127.0.0.1', ADMIN_PORT: '0' },
    });
    try {
      let err = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stderr.on('data', (c: Buffer) => {
          err += c.toString();
          const m = /"port":(\d+)/.exec(err);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', () => reject(new Error(`exited: ${err}`)));
      });
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/api/v4/projects/1`)).status).toBe(401);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await standin.close();
    }
  });
});

describe('help', () => {
  for (const cmd of ['serve', 'check', 'token', 'explain']) {
    it(`${cmd} --help`, async () => {
      const r = await run([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: gitlab-scope-proxy ${cmd}`);
    });
  }
  it('--help and unknown commands', async () => {
    expect((await run(['--help'])).stdout).toContain('Commands:');
    const r = await run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command');
  });
});
