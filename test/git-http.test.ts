// Git over HTTP through the proxy with the real `git` client, against `git http-backend`
// behind the GitLab stand-in: clone and ls-remote for a client with read_repository and the
// project in scope; everything else (other projects, push without write_repository, other
// services, LFS, dumb HTTP, odd paths) refused before it reaches GitLab.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rawRequest, startHarness, statuses, type Harness } from './support/harness.ts';
import { createRepo, gitSandbox, mustGit, type GitSandbox } from './support/git-backend.ts';
import type { RecordedRequest } from './support/gitlab-standin.ts';

const POLICY = `
clients:
  vendor:
    scopes: [read_repository]
    projects: [acme/docs, acme/platform/api]
  pusher:
    scopes: [read_repository, write_repository]
    projects: [acme/docs]
  api-reader:
    scopes: [read_api]
    projects: [acme/docs]
  unscoped:
    scopes: [read_repository]
`;

const BRANCHES = 60;
const BIG = randomBytes(6 * 1024 * 1024);

let h: Harness;
let sb: GitSandbox;
let port: string;
const jwt: Record<string, string> = {};

/** Requests that reached the stand-in's git routes (scope lookups go to /api/v4). */
const gitRequests = (): RecordedRequest[] => h.standin.requests.filter((r) => /\.git\//.test(r.path));
const basicFor = (token: string): string => `Basic ${Buffer.from(`oauth2:${token}`).toString('base64')}`;
const url = (user: string, client: string, path: string): string => `http://${user}:${jwt[client]}@127.0.0.1:${port}${path}`;

beforeAll(async () => {
  sb = gitSandbox();
  await createRepo(sb, 'acme/docs', { 'README.md': '# docs\n', 'guide/intro.md': 'Hello from acme/docs.\n' }, BRANCHES);
  await createRepo(sb, 'acme/platform/api', { 'big.bin': BIG });
  await createRepo(sb, 'other/secret', { 'SECRET.md': 'not for vendors\n' });
  h = await startHarness({ policies: { 'git.yaml': POLICY } });
  h.standin.serveGitFrom(sb.projectRoot);
  port = new URL(h.url).port;
  for (const client of ['vendor', 'pusher', 'api-reader', 'unscoped']) jwt[client] = await h.token(client);
}, 60_000);

afterAll(async () => {
  await h?.close();
  sb?.close();
});

beforeEach(() => h.standin.reset());

/** The JWT must never reach GitLab: not in a header, the path, the query or a body. */
function expectNoJwtUpstream(): void {
  for (const r of h.standin.requests) {
    const text = [r.url, ...r.rawHeaders, r.body.toString('latin1')].join('\n');
    for (const token of Object.values(jwt)) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(Buffer.from(`oauth2:${token}`).toString('base64'));
    }
  }
}

describe('git over HTTP: fetch with read_repository', () => {
  it('clones an in-scope project with the real git client; GitLab sees only upload-pack with the real token', async () => {
    const dest = join(sb.dir, 'clone-docs');
    const r = await sb.git(['clone', '--quiet', url('vendor', 'vendor', '/acme/docs.git'), dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dest, 'guide/intro.md'), 'utf8')).toBe('Hello from acme/docs.\n');
    const remoteBranches = (await mustGit(sb, ['branch', '-r'], dest)).split('\n').filter((l) => l.includes('origin/topic-'));
    expect(remoteBranches).toHaveLength(BRANCHES);

    const seen = gitRequests();
    expect(seen.length).toBeGreaterThanOrEqual(2);
    for (const req of seen) {
      expect(['GET /acme/docs.git/info/refs?service=git-upload-pack', 'POST /acme/docs.git/git-upload-pack']).toContain(`${req.method} ${req.url}`);
      expect(req.headers.authorization).toBe(basicFor(h.realToken));
      expect(req.headers['private-token']).toBeUndefined();
      // Protocol v2 (set in the sandbox's config) reaches GitLab.
      expect(req.headers['git-protocol']).toBe('version=2');
    }
    // 60 wants are more than 1 KiB: git gzips the negotiation (remote-curl.c post_rpc), and
    // the compressed body reaches GitLab as sent.
    const gzipped = seen.filter((req) => req.method === 'POST' && req.headers['content-encoding'] === 'gzip');
    expect(gzipped.length).toBeGreaterThan(0);
    expect(gzipped[0]!.body.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expectNoJwtUpstream();

    await h.waitForAudit(h.audit.length);
    const lines = h.audit.filter((l) => l.client === 'vendor' && l.path.startsWith('/acme/docs.git/'));
    expect(lines.filter((l) => l.decision === 'allow').length).toBe(seen.length);
    for (const l of lines.filter((x) => x.decision === 'allow')) expect(l.rule).toBe('scopes: read_repository');
    for (const token of Object.values(jwt)) expect(h.auditText()).not.toContain(token);
  }, 60_000);

  it('streams a large pack: a 6 MiB file arrives whole', async () => {
    const dest = join(sb.dir, 'clone-api');
    const r = await sb.git(['clone', '--quiet', url('someone', 'vendor', '/acme/platform/api.git'), dest]);
    expect(r.code, r.stderr).toBe(0);
    const got = readFileSync(join(dest, 'big.bin'));
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(BIG).digest('hex'));
    const answers = h.audit.filter((l) => l.path === '/acme/platform/api.git/git-upload-pack' && l.decision === 'allow');
    expect(answers.length).toBeGreaterThan(0);
    expect(Math.max(...answers.map((l) => l.bytesOut))).toBeGreaterThan(BIG.length / 2);
  }, 60_000);

  it('ls-remote works with oauth2:<jwt>, with protocol v2 and v0, and with the path in another case', async () => {
    const head = (await mustGit(sb, ['--git-dir', join(sb.projectRoot, 'acme/docs.git'), 'rev-parse', 'main'])).trim();
    for (const version of ['2', '0']) {
      h.standin.reset();
      const r = await sb.git(['-c', `protocol.version=${version}`, 'ls-remote', url('oauth2', 'vendor', '/acme/docs.git'), 'refs/heads/main']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${head}\trefs/heads/main\n`);
      const seen = gitRequests();
      expect(seen.length).toBeGreaterThan(0);
      for (const req of seen) {
        expect(req.headers.authorization).toBe(basicFor(h.realToken));
        expect(req.headers['git-protocol']).toBe(version === '2' ? 'version=2' : undefined);
      }
    }
    const r = await sb.git(['ls-remote', url('oauth2', 'vendor', '/ACME/Docs.git'), 'refs/heads/main']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${head}\trefs/heads/main\n`);
    expectNoJwtUpstream();
  }, 60_000);

  it('asks for credentials the way GitLab does: 401 with a Basic challenge, nothing forwarded', async () => {
    const res = await fetch(`${h.url}/acme/docs.git/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="GitLab"');
    const api = await fetch(`${h.url}/api/v4/projects/3`);
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBeNull();
    expect(h.standin.requests).toHaveLength(0);
  });
});

describe('git over HTTP: refusals', () => {
  it('refuses a clone of a project outside projects: and git exits non-zero; no git request reaches GitLab', async () => {
    const r = await sb.git(['clone', '--quiet', url('vendor', 'vendor', '/other/secret.git'), join(sb.dir, 'clone-secret')]);
    expect(r.code).not.toBe(0);
    expect(gitRequests()).toHaveLength(0);
    // Only the scope lookup (the proxy's own question) reached GitLab.
    for (const req of h.standin.requests) expect(req.path).toMatch(/^\/api\/v4\/projects\//);
    const denied = h.audit.filter((l) => l.client === 'vendor' && l.path === '/other/secret.git/info/refs');
    expect(denied.at(-1)).toMatchObject({ decision: 'deny', status: 403 });
    expect(denied.at(-1)!.reason).toBe('git-project');
  }, 30_000);

  it('refuses a client without read_repository, and one without a projects: list', async () => {
    for (const client of ['api-reader', 'unscoped']) {
      const r = await sb.git(['ls-remote', url('oauth2', client, '/acme/docs.git')]);
      expect(r.code).not.toBe(0);
    }
    expect(gitRequests()).toHaveLength(0);
    const reasons = h.audit.filter((l) => (l.client === 'api-reader' || l.client === 'unscoped') && l.status === 403).map((l) => `${l.reason}: ${l.detail}`);
    expect(reasons).toContain('not-api: git over HTTP needs scopes: [read_repository]');
    expect(reasons).toContain('git-project: git routes need a projects: list');
  }, 30_000);

  it('refuses git push without write_repository; allows it with write_repository', async () => {
    const work = join(sb.dir, 'push-work');
    await mustGit(sb, ['clone', '--quiet', url('vendor', 'vendor', '/acme/docs.git'), work]);
    await mustGit(sb, ['commit', '--quiet', '--allow-empty', '-m', 'from a vendor'], work);
    h.standin.reset();

    const refused = await sb.git(['push', url('vendor', 'vendor', '/acme/docs.git'), 'HEAD:refs/heads/vendor-change'], { cwd: work });
    expect(refused.code).not.toBe(0);
    expect(gitRequests()).toHaveLength(0);
    const bare = join(sb.projectRoot, 'acme/docs.git');
    expect((await sb.git(['--git-dir', bare, 'rev-parse', '--verify', '--quiet', 'refs/heads/vendor-change'])).code).not.toBe(0);

    const pushed = await sb.git(['push', url('pusher', 'pusher', '/acme/docs.git'), 'HEAD:refs/heads/vendor-change'], { cwd: work });
    expect(pushed.code, pushed.stderr).toBe(0);
    const local = (await mustGit(sb, ['rev-parse', 'HEAD'], work)).trim();
    expect((await mustGit(sb, ['--git-dir', bare, 'rev-parse', 'refs/heads/vendor-change'])).trim()).toBe(local);
    const seen = gitRequests();
    expect(seen.map((r) => `${r.method} ${r.url}`)).toContain('POST /acme/docs.git/git-receive-pack');
    for (const req of seen) expect(req.headers.authorization).toBe(basicFor(h.realToken));
    expectNoJwtUpstream();
  }, 60_000);

  it('refuses every other request under a repository path before it reaches GitLab', async () => {
    const auth = `Authorization: ${basicFor(jwt.vendor!)}\r\n`;
    const get = (target: string, extra = ''): string => `GET ${target} HTTP/1.1\r\nHost: x\r\n${auth}${extra}Connection: close\r\n\r\n`;
    const post = (target: string, type: string, extra = ''): string =>
      `POST ${target} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: ${type}\r\nContent-Length: 4\r\n${extra}Connection: close\r\n\r\n0000`;
    const cases: [string, string, number][] = [
      ['receive-pack advertisement without write_repository', get('/acme/docs.git/info/refs?service=git-receive-pack'), 403],
      ['info/refs without a service (dumb HTTP)', get('/acme/docs.git/info/refs'), 403],
      ['another service', get('/acme/docs.git/info/refs?service=git-upload-archive'), 403],
      ['a second query parameter', get('/acme/docs.git/info/refs?service=git-upload-pack&x=1'), 403],
      ['the service in another case', get('/acme/docs.git/info/refs?service=GIT-UPLOAD-PACK'), 403],
      ['the service encoded', get('/acme/docs.git/info/refs?service=git%2Dupload-pack'), 403],
      ['the JWT in the query', get(`/acme/docs.git/info/refs?service=git-upload-pack&private_token=${jwt.vendor}`).replace(auth, ''), 403],
      ['info/refs without .git (GitLab redirects)', get('/acme/docs/info/refs?service=git-upload-pack'), 403],
      ['.GIT in another case', get('/acme/docs.GIT/info/refs?service=git-upload-pack'), 403],
      ['a dot segment', get('/acme/docs.git/../x.git/info/refs?service=git-upload-pack'), 400],
      ['an encoded dot segment', get('/acme/%2e%2e/docs.git/info/refs?service=git-upload-pack'), 400],
      ['an encoded letter', get('/acme/%64ocs.git/info/refs?service=git-upload-pack'), 400],
      ['an encoded slash in the project path', get('/acme%2Fdocs.git/info/refs?service=git-upload-pack'), 400],
      ['an encoded letter in the route', get('/acme/docs.git/info/%72efs?service=git-upload-pack'), 400],
      ['a wiki repository', get('/acme/docs.wiki.git/info/refs?service=git-upload-pack'), 403],
      ['a snippet repository', get('/snippets/5.git/info/refs?service=git-upload-pack'), 403],
      ['a project without a namespace', get('/docs.git/info/refs?service=git-upload-pack'), 400],
      ['two .git segments', get('/acme/docs.git/x.git/info/refs?service=git-upload-pack'), 400],
      ['HEAD on info/refs', `HEAD /acme/docs.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`, 405],
      ['a bad Git-Protocol', get('/acme/docs.git/info/refs?service=git-upload-pack', 'Git-Protocol: version=2:x=y\r\n'), 400],
      ['two Git-Protocol headers', get('/acme/docs.git/info/refs?service=git-upload-pack', 'Git-Protocol: version=2\r\nGit-Protocol: version=1\r\n'), 400],
      ['LFS batch', post('/acme/docs.git/info/lfs/objects/batch', 'application/vnd.git-lfs+json'), 403],
      ['LFS object', get('/acme/docs.git/gitlab-lfs/objects/' + 'a'.repeat(64)), 403],
      ['upload-pack with GET', get('/acme/docs.git/git-upload-pack'), 405],
      ['upload-pack with a query', post('/acme/docs.git/git-upload-pack?service=git-upload-pack', 'application/x-git-upload-pack-request'), 403],
      ['upload-pack with another type', post('/acme/docs.git/git-upload-pack', 'application/x-www-form-urlencoded'), 415],
      ['upload-pack with a receive-pack type', post('/acme/docs.git/git-upload-pack', 'application/x-git-receive-pack-request'), 415],
      ['receive-pack without write_repository', post('/acme/docs.git/git-receive-pack', 'application/x-git-receive-pack-request'), 403],
      ['upload-pack deflate-compressed', post('/acme/docs.git/git-upload-pack', 'application/x-git-upload-pack-request', 'Content-Encoding: deflate\r\n'), 415],
      ['an API POST gzip-compressed', post('/api/v4/projects/3/statuses/abc', 'application/json', 'Content-Encoding: gzip\r\n'), 415],
      ['an out-of-scope upload-pack', post('/other/secret.git/git-upload-pack', 'application/x-git-upload-pack-request'), 403],
    ];
    for (const [why, bytes, status] of cases) {
      const { text } = await rawRequest(h.url, bytes);
      expect(statuses(text), why).toEqual([status]);
    }
    expect(gitRequests()).toHaveLength(0);
  }, 30_000);
});
