// Running the proxy as an operator does: `npm start`'s command (exec-style, so signals reach the
// proxy), the pid in the listening line, `gitlab-scope-proxy reload` and the admin listener's
// POST /-/reload and /-/reopen, SIGUSR1 reopening the audit log after a rotation, configuration
// mistakes as one line and exit 2; and, in process, request ids end to end, TRUSTED_PROXIES and
// per-client source_ips.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitLabStandIn, type StandIn } from './support/gitlab-standin.ts';
import { readLines, send, startRig, waitFor } from './support/ops.ts';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src', 'cli.ts');
const POLICY = 'clients:\n  packit:\n    allow:\n      - GET /api/v4/projects/:id\n';
const work = mkdtempSync(join(tmpdir(), 'gsp-operate-'));
const realToken = `glpat-${randomBytes(10).toString('hex')}`;

let standin: StandIn;
beforeAll(async () => {
  standin = await startGitLabStandIn({ validTokens: [realToken] });
});
afterAll(async () => {
  await standin.close();
  rmSync(work, { recursive: true, force: true });
});

function baseEnv(dir: string): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '', GITLAB_URL: standin.url, GITLAB_TOKEN: realToken, PROXY_JWT_SECRET: randomBytes(32).toString('hex'),
    POLICY_DIR: join(dir, 'policies'), AUDIT_LOG: join(dir, 'log', 'audit.log'), PORT: '0', HOST: '127.0.0.1', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1',
  };
}

/** Starts a process and resolves with its stderr lines once one matches, or rejects when it exits first. */
function waitForLine(child: ChildProcess, match: (line: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString();
      const line = buffer.split('\n').find(match);
      if (line) {
        child.stderr!.off('data', onData);
        resolve(line);
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited ${code} before the line: ${buffer}`)));
  });
}

describe('npm start, signals and the reload command', () => {
  it('runs the proxy itself (exec), names its pid, reloads on `reload`, reopens the audit log on SIGUSR1, stops on SIGTERM', async () => {
    const dir = join(work, 'start');
    mkdirSync(join(dir, 'policies'), { recursive: true });
    writeFileSync(join(dir, 'policies', 'packit.yaml'), POLICY);
    const env = baseEnv(dir);
    // package.json's start script, with the sources for the compiled dist/ (npm run build is not part of the test).
    const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start']!;
    expect(script).toMatch(/^exec node .*dist\/cli\.js serve$/);
    const child = spawn('sh', ['-c', script.replace('dist/cli.js', CLI)], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const listening = JSON.parse(await waitForLine(child, (l) => l.includes('"msg":"listening"'))) as { pid: number; port: number; adminPort: number };
      // exec: the shell became the proxy, so a signal to the pid npm or a supervisor sees reaches it.
      expect(listening.pid).toBe(child.pid);
      const adminEnv = { ...env, ADMIN_PORT: String(listening.adminPort) };
      const reload = (args: string[] = []) => spawnSync(process.execPath, [CLI, 'reload', ...args], { env: adminEnv, encoding: 'utf8', timeout: 20_000 });
      const ok = reload();
      expect(ok.stdout.trim(), ok.stderr).toBe('reloaded: nothing changed');
      expect(ok.status).toBe(0);
      writeFileSync(join(dir, 'policies', 'packit.yaml'), 'clients:\n  packit:\n    alow: []\n');
      const refused = reload();
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('reload refused; the previous policy and secrets stay in force:');
      expect(refused.stderr).toMatch(/packit\.yaml:3:5 unknown key "alow"; did you mean "allow"\?/);
      writeFileSync(join(dir, 'policies', 'packit.yaml'), POLICY);

      // Log rotation: rename, SIGUSR1, and the next line goes to a new file; nothing is lost.
      const audit = env['AUDIT_LOG']!;
      const before = readLines(audit).length;
      renameSync(audit, `${audit}.1`);
      const reopened = waitForLine(child, (l) => l.includes('"msg":"audit log reopened"'));
      process.kill(child.pid!, 'SIGUSR1');
      await reopened;
      const proxyUrl = `http://127.0.0.1:${listening.port}`;
      expect((await send(`${proxyUrl}/api/v4/projects/1`)).status).toBe(401);
      await waitFor(() => { try { return readLines(audit).length === 1; } catch { return false; } }, 'the line in the new audit file');
      expect(readLines(`${audit}.1`)).toHaveLength(before);
      expect(reload(['--reopen-audit']).stdout.trim()).toBe('audit log reopened');

      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      process.kill(child.pid!, 'SIGTERM');
      expect(await exited).toBe(0);
      // Nothing listens any more: `reload` says so in one line, exit 2.
      const gone = reload();
      expect(gone.status).toBe(2);
      expect(gone.stderr.trim()).toMatch(/^cannot reach the proxy's admin listener at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});

describe('configuration mistakes stop the start with one line and exit 2', () => {
  function serve(env: Record<string, string>): { status: number | null; stderr: string } {
    const r = spawnSync(process.execPath, [CLI, 'serve'], { env, encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stderr: r.stderr };
  }

  it('port in use, unwritable AUDIT_LOG, unreadable secret file', async () => {
    const dir = join(work, 'mistakes');
    mkdirSync(join(dir, 'policies'), { recursive: true });
    writeFileSync(join(dir, 'policies', 'packit.yaml'), POLICY);
    writeFileSync(join(dir, 'a-file'), '');
    mkdirSync(join(dir, 'no-keys'));
    const env = baseEnv(dir);
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ PORT: String(port) }, new RegExp(`^configuration error: PORT: 127\\.0\\.0\\.1:${port} is already in use \\(another process listens there\\) \\(EADDRINUSE\\)$`)],
        [{ ADMIN_PORT: String(port) }, new RegExp(`^configuration error: ADMIN_PORT: 127\\.0\\.0\\.1:${port} is already in use`)],
        [{ AUDIT_LOG: join(dir, 'a-file', 'audit.log') }, /^configuration error: AUDIT_LOG: cannot open .*a-file\/audit\.log \((ENOTDIR|EEXIST)\)$/],
        [{ GITLAB_TOKEN: '', GITLAB_TOKEN_FILE: join(dir, 'missing') }, /^configuration error: GITLAB_TOKEN_FILE: cannot read .*missing \(ENOENT\)$/],
        [{ PROXY_JWT_SECRET: '', PROXY_JWT_SECRET_FILE: join(dir, 'no-keys') }, /^configuration error: PROXY_JWT_SECRET_FILE: .*no-keys holds no key file$/],
      ];
      for (const [extra, message] of cases) {
        const r = serve({ ...env, ...extra });
        expect(r.status, JSON.stringify(extra)).toBe(2);
        expect(r.stderr.trim().split('\n'), JSON.stringify(extra)).toHaveLength(1);
        expect(r.stderr.trim()).toMatch(message);
      }
    } finally {
      busy.close();
    }
  }, 60_000);

  it('warns at start when POLICY_DIR holds no client', async () => {
    const dir = join(work, 'empty');
    mkdirSync(join(dir, 'policies'), { recursive: true });
    const child = spawn(process.execPath, [CLI, 'serve'], { env: baseEnv(dir), stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const warning = JSON.parse(await waitForLine(child, (l) => l.includes('POLICY_DIR holds no client'))) as { level: number; policyDir: string };
      expect(warning.level).toBe(40);
      expect(warning.policyDir).toBe(join(dir, 'policies'));
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);
});

describe('request ids, TRUSTED_PROXIES and source_ips', () => {
  const policy = 'clients:\n  packit:\n    allow:\n      - GET /api/v4/projects/:id\n  office:\n    source_ips: [10.0.0.0/8]\n    allow:\n      - GET /api/v4/projects/:id\n';

  it('puts X-Request-Id on every response and forwards it to GitLab; ignores an incoming one from anybody but a trusted proxy', async () => {
    const rig = await startRig({ policies: { 'p.yaml': policy }, env: { GITLAB_URL: standin.url, GITLAB_TOKEN: realToken } });
    try {
      const jwt = await rig.token('packit');
      standin.reset();
      const allowed = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt, 'X-Request-Id': 'from-the-vendor' } });
      expect(allowed.status).toBe(200);
      const id = allowed.headers['x-request-id'];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(standin.requests.map((r) => r.headers['x-request-id'])).toEqual([id]);
      const health = await send(`${rig.url}/healthz`);
      expect(health.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const options = await send(`${rig.url}/api/v4/projects/1`, { method: 'OPTIONS' });
      expect(options.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      // Refusals, before and after authentication, name their request too.
      const refused = await send(`${rig.url}/api/v4/projects/1/hooks`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(refused.status).toBe(403);
      expect(refused.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const anonymous = await send(`${rig.url}/api/v4/projects/1`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const outside = await send(`${rig.url}/explore`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(outside.status).toBe(403);
      expect(outside.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      await waitFor(() => rig.auditLines().length === 5, 'five audit lines');
      expect(rig.auditLines()[0]).toMatchObject({ reqId: id, ip: '127.0.0.1' });
    } finally {
      await rig.close();
    }
  });

  it('behind TRUSTED_PROXIES: the audit ip is the forwarded client, its request id is kept, and source_ips holds', async () => {
    const rig = await startRig({ policies: { 'p.yaml': policy }, env: { GITLAB_URL: standin.url, GITLAB_TOKEN: realToken, TRUSTED_PROXIES: '127.0.0.1/32,::1' } });
    try {
      const packit = await rig.token('packit');
      const office = await rig.token('office');
      standin.reset();
      const viaLb = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': packit, 'X-Request-Id': 'lb-4bf92f3577b34da6', 'X-Forwarded-For': '1.2.3.4, 198.51.100.7' } });
      expect(viaLb.status).toBe(200);
      expect(viaLb.headers['x-request-id']).toBe('lb-4bf92f3577b34da6');
      expect(standin.requests[0]!.headers['x-request-id']).toBe('lb-4bf92f3577b34da6');
      // A malformed id is replaced by the proxy's own.
      const badId = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': packit, 'X-Request-Id': 'has spaces' } });
      expect(badId.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      // source_ips: the office token works from 10.x only.
      const outside = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': office, Forwarded: 'for=198.51.100.7' } });
      expect(outside.status).toBe(401);
      const inside = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': office, Forwarded: 'for=10.1.2.3;proto=https' } });
      expect(inside.status).toBe(200);
      await waitFor(() => rig.auditLines().length === 4, 'four audit lines');
      const lines = rig.auditLines();
      expect(lines[0]).toMatchObject({ reqId: 'lb-4bf92f3577b34da6', client: 'packit', ip: '198.51.100.7', status: 200 });
      expect(lines[2]).toMatchObject({ client: 'office', ip: '198.51.100.7', status: 401, reason: 'source-ip-not-allowed' });
      expect(lines[3]).toMatchObject({ client: 'office', ip: '10.1.2.3', status: 200 });
      expect(standin.requests.filter((r) => r.headers['x-forwarded-for'] !== undefined || r.headers['forwarded'] !== undefined)).toEqual([]);
    } finally {
      await rig.close();
    }
  });

  it('refuses source_ips that are not addresses, at their line, and the setting TRUSTED_PROXIES likewise', async () => {
    const dir = join(work, 'bad-cidr');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'p.yaml'), 'clients:\n  a:\n    source_ips: [10.0.0.0/33]\n    allow: []\n');
    const check = spawnSync(process.execPath, [CLI, 'check', '--policies', dir], { encoding: 'utf8' });
    expect(check.stdout).toMatch(/p\.yaml:3:\d+ source_ips: "10\.0\.0\.0\/33" is not an IP address or CIDR/);
    const serve = spawnSync(process.execPath, [CLI, 'serve'], { env: { ...baseEnv(join(work, 'start')), TRUSTED_PROXIES: 'lb.example.com' }, encoding: 'utf8' });
    expect(serve.status).toBe(2);
    expect(serve.stderr.trim()).toBe('configuration error: TRUSTED_PROXIES: "lb.example.com" is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)');
  });
});

describe('admin lifecycle endpoints', () => {
  it('POST /-/reload reloads and POST /-/reopen reopens the audit log; other methods get 405', async () => {
    const rig = await startRig({ policies: { 'p.yaml': POLICY }, env: { GITLAB_URL: standin.url, GITLAB_TOKEN: realToken } });
    try {
      expect((await send(`${rig.adminUrl}/-/reload`)).status).toBe(405);
      const reloaded = await send(`${rig.adminUrl}/-/reload`, { method: 'POST' });
      expect(reloaded.status).toBe(200);
      expect(JSON.parse(reloaded.text)).toEqual({ status: 'reloaded', changed: [] });
      await waitFor(() => rig.auditLines().some((l) => l['decision'] === 'reload' && l['reason'] === 'admin'), 'the reload audit line');
      renameSync(rig.auditFile, `${rig.auditFile}.1`);
      expect(JSON.parse((await send(`${rig.adminUrl}/-/reopen`, { method: 'POST' })).text)).toEqual({ status: 'reopened' });
      await send(`${rig.url}/api/v4/projects/1`);
      await waitFor(() => { try { return rig.auditLines().length === 1; } catch { return false; } }, 'a line in the reopened audit log');
      writeFileSync(join(rig.policyDir, 'p.yaml'), 'clients: [');
      const refused = await send(`${rig.adminUrl}/-/reload`, { method: 'POST' });
      expect(refused.status).toBe(500);
      expect(JSON.parse(refused.text)).toMatchObject({ status: 'refused' });
    } finally {
      await rig.close();
    }
  });
});
