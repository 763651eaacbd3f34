// Hot reload: the policy directory and the secret files are watched; a change is applied
// without a restart, a broken one is refused and the last good one stays. Every reload, and
// every refusal, is an audit line of client "system".
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyDir, PolicyError } from '../src/policy/load.ts';
import { startGitLabStandIn, type StandIn } from './support/gitlab-standin.ts';
import { send, startRig, type Line, type Rig } from './support/ops.ts';

const policy = (extra = '') => `clients:
  packit:
    allow:
      - GET /api/v4/projects/:id
${extra}`;

const systemLines = (rig: Rig): Line[] => rig.auditLines().filter((l) => l.client === 'system');
const get = async (rig: Rig, path: string, jwt: string) => (await send(rig.url + path, { headers: { 'PRIVATE-TOKEN': jwt } })).status;
/** The next reload or refusal line after the first `count` system lines, when it is written. */
const nextSystemLine = (rig: Rig, count: number, what: string): Promise<Line> => rig.until(() => systemLines(rig)[count], what);

describe('reload on file changes', () => {
  const tokens = [`glpat-${randomBytes(12).toString('hex')}`, `glpat-${randomBytes(12).toString('hex')}`];
  const secretsDir = mkdtempSync(join(tmpdir(), 'gsp-secrets-'));
  const tokenFile = join(secretsDir, 'gitlab_token');
  const jwtFile = join(secretsDir, 'jwt_secret');
  let standin: StandIn;
  let rig: Rig;
  beforeAll(async () => {
    writeFileSync(tokenFile, `${tokens[0]}\n`);
    writeFileSync(jwtFile, randomBytes(32).toString('hex'));
    standin = await startGitLabStandIn({ validTokens: tokens });
    rig = await startRig({
      policies: { 'clients.yaml': policy() },
      env: { GITLAB_URL: standin.url, GITLAB_TOKEN_FILE: tokenFile, PROXY_JWT_SECRET: '', PROXY_JWT_SECRET_FILE: jwtFile },
      watch: true,
    });
  });
  afterAll(async () => {
    await rig.close();
    await standin.close();
    rmSync(secretsDir, { recursive: true, force: true });
  });
  const jwt = async () => rig.token('packit', { secret: readFileSync(jwtFile, 'utf8') });

  it('applies a changed policy file, audits it with the new checksum, and counts it', async () => {
    const token = await jwt();
    expect(await get(rig, '/api/v4/projects/1/repository/tree', token)).toBe(403);
    const before = rig.proxy.policy().checksum;
    const lines = systemLines(rig).length;
    writeFileSync(join(rig.policyDir, 'clients.yaml'), policy('      - GET /api/v4/projects/:id/repository/tree\n'));
    const line = await nextSystemLine(rig, lines, 'the reload');
    expect(await get(rig, '/api/v4/projects/1/repository/tree', token)).toBe(200);
    expect(line).toMatchObject({ client: 'system', decision: 'reload', reason: 'file-change', checksum: rig.proxy.policy().checksum, previousChecksum: before, changed: ['policy'] });
    expect(line.time).toEqual(expect.any(String));
    expect(await rig.metric('gsp_policy_reloads_total', { result: 'success' })).toBe(1);
    expect(await rig.metric('gsp_policy_info', { checksum: rig.proxy.policy().checksum })).toBe(1);
    expect(await rig.metric('gsp_policy_info', { checksum: before })).toBeUndefined();
  });

  // The debounce itself (a burst spaced in time, the longest wait) is timed with a stepped clock
  // in src/ops/watch.test.ts; here, real file events end in one reload of the final content.
  it('applies a burst of writes as one reload of the last content, and ignores a touch that changes nothing', async () => {
    const lines = systemLines(rig).length;
    const file = join(rig.policyDir, 'clients.yaml');
    for (let i = 0; i < 5; i++) writeFileSync(file, policy(`# edit ${i}\n`));
    const reload = await nextSystemLine(rig, lines, 'the reload');
    expect(reload).toMatchObject({ decision: 'reload', checksum: loadPolicyDir(rig.policyDir).checksum });
    expect(rig.proxy.policy().checksum).toBe(loadPolicyDir(rig.policyDir).checksum);
    // A touch, and a write of the same content: a file event without a change reloads nothing.
    const now = new Date();
    utimesSync(file, now, now);
    writeFileSync(file, policy('# edit 4\n'));
    expect(rig.proxy.reloadNow('file-change')).toMatchObject({ ok: true, changed: [] });
    // The next real change is the very next line: nothing was written for the touch.
    writeFileSync(file, policy('# edit 5\n'));
    const next = await nextSystemLine(rig, lines + 1, 'the reload after the touch');
    expect(next).toMatchObject({ decision: 'reload', previousChecksum: reload.checksum, checksum: loadPolicyDir(rig.policyDir).checksum });
  });

  it('refuses a policy that fails validation: the last good one stays, with an error log line, an audit line and a metric', async () => {
    const token = await jwt();
    const good = rig.proxy.policy().checksum;
    const lines = systemLines(rig).length;
    writeFileSync(join(rig.policyDir, 'clients.yaml'), 'clients:\n  packit:\n    allow: [get /api/v4/projects/:id]\n');
    const refused = await nextSystemLine(rig, lines, 'the refusal');
    expect(rig.proxy.policy().checksum).toBe(good);
    expect(await get(rig, '/api/v4/projects/1', token)).toBe(200);
    expect(refused).toMatchObject({ client: 'system', decision: 'reload-refused', reason: 'file-change', previousChecksum: good, problems: 1 });
    expect(refused.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(refused.checksum).not.toBe(good);
    expect(await rig.metric('gsp_policy_reloads_total', { result: 'failure' })).toBe(1);
    const error = rig.opsLines.find((l) => l.level === 50 && String(l.msg).startsWith('reload refused'))!;
    expect(error.problems).toEqual([expect.stringMatching(/clients\.yaml:3:\d+ unknown method "get"/)]);
    // Fixed again: applied.
    writeFileSync(join(rig.policyDir, 'clients.yaml'), policy('# fixed\n'));
    expect(await nextSystemLine(rig, lines + 1, 'the reload')).toMatchObject({ decision: 'reload' });
  });

  it('re-reads GITLAB_TOKEN_FILE: the rotated token is used for the next request', async () => {
    const token = await jwt();
    standin.reset();
    expect(await get(rig, '/api/v4/projects/1', token)).toBe(200);
    const lines = systemLines(rig).length;
    writeFileSync(tokenFile, `${tokens[1]}\n`);
    expect(await nextSystemLine(rig, lines, 'the token reload')).toMatchObject({ decision: 'reload', changed: ['gitlab-token'] });
    expect(await get(rig, '/api/v4/projects/1', token)).toBe(200);
    expect(standin.requests.map((r) => r.headers['private-token'])).toEqual(tokens);
    expect(readFileSync(rig.auditFile, 'utf8') + JSON.stringify(rig.opsLines)).not.toContain(tokens[1]!);
  });

  it('refuses an empty token file and keeps the old token', async () => {
    const token = await jwt();
    const lines = systemLines(rig).length;
    writeFileSync(tokenFile, '');
    expect(await nextSystemLine(rig, lines, 'the refusal')).toMatchObject({ decision: 'reload-refused', checksum: rig.proxy.policy().checksum, problems: 1 });
    standin.reset();
    expect(await get(rig, '/api/v4/projects/1', token)).toBe(200);
    expect(standin.requests[0]!.headers['private-token']).toBe(tokens[1]);
    writeFileSync(tokenFile, tokens[0]!);
    expect(await nextSystemLine(rig, lines + 1, 'the reload')).toMatchObject({ decision: 'reload', changed: ['gitlab-token'] });
  });

  it('re-reads PROXY_JWT_SECRET_FILE: tokens signed with the old key stop working', async () => {
    const old = await jwt();
    expect(await get(rig, '/api/v4/projects/1', old)).toBe(200);
    const lines = systemLines(rig).length;
    writeFileSync(jwtFile, randomBytes(32).toString('hex'));
    expect(await nextSystemLine(rig, lines, 'the key reload')).toMatchObject({ decision: 'reload', changed: ['jwt-keys'] });
    expect(await get(rig, '/api/v4/projects/1', old)).toBe(401);
    expect(await get(rig, '/api/v4/projects/1', await jwt())).toBe(200);
  });

  it('reloads on SIGHUP (reloadNow) even when nothing changed, and says so', async () => {
    const lines = systemLines(rig).length;
    const outcome = rig.proxy.reloadNow('sighup');
    expect(outcome).toMatchObject({ ok: true, changed: [] });
    expect(await nextSystemLine(rig, lines, 'the audit line')).toMatchObject({ decision: 'reload', reason: 'sighup', changed: [] });
  });
});

describe('Kubernetes ConfigMap updates', () => {
  it('follows the atomic swap of the ..data symlink', async () => {
    const token = `glpat-${randomBytes(12).toString('hex')}`;
    const standin = await startGitLabStandIn({ validTokens: [token] });
    // The kubelet's layout: the files are symlinks through ..data to a timestamped folder.
    const root = mkdtempSync(join(tmpdir(), 'gsp-configmap-'));
    const version = (name: string, text: string): void => {
      mkdirSync(join(root, name));
      writeFileSync(join(root, name, 'clients.yaml'), text);
    };
    version('..2024_01_01_00_00_00.000000001', policy());
    symlinkSync('..2024_01_01_00_00_00.000000001', join(root, '..data'));
    symlinkSync('..data/clients.yaml', join(root, 'clients.yaml'));
    const rig = await startRig({ policies: {}, policyDir: root, env: { GITLAB_URL: standin.url, GITLAB_TOKEN: token }, watch: true });
    try {
      const jwt = await rig.token('packit');
      expect(await get(rig, '/api/v4/projects/1/repository/tree', jwt)).toBe(403);
      const before = rig.proxy.policy().checksum;
      version('..2024_01_01_00_01_00.000000002', policy('      - GET /api/v4/projects/:id/repository/tree\n'));
      symlinkSync('..2024_01_01_00_01_00.000000002', join(root, '..data_tmp'));
      renameSync(join(root, '..data_tmp'), join(root, '..data'));
      rmSync(join(root, '..2024_01_01_00_00_00.000000001'), { recursive: true });
      await nextSystemLine(rig, 0, 'the reload after the swap');
      expect(rig.proxy.policy().checksum).not.toBe(before);
      expect(await get(rig, '/api/v4/projects/1/repository/tree', jwt)).toBe(200);
      expect(systemLines(rig)).toEqual([expect.objectContaining({ decision: 'reload', reason: 'file-change', changed: ['policy'] })]);
    } finally {
      await rig.close();
      await standin.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('policy checks of the operational settings', () => {
  const dir = (text: string): string => {
    const d = mkdtempSync(join(tmpdir(), 'gsp-policy-'));
    writeFileSync(join(d, 'a.yaml'), text);
    return d;
  };
  const problems = (text: string): string[] => {
    try {
      loadPolicyDir(dir(text), '/');
    } catch (err) {
      if (err instanceof PolicyError) return err.problems.map((p) => `${p.line}:${p.col} ${p.message}`);
      throw err;
    }
    return [];
  };

  it('reports a missing token file or variable, and bad limits, at their location', () => {
    const missing = join(tmpdir(), `gsp-missing-${randomBytes(4).toString('hex')}`);
    expect(problems(`clients:
  a:
    upstream_token_file: ${missing}
    allow: []
  b:
    upstream_token_env: GSP_SURELY_UNSET_${randomBytes(4).toString('hex').toUpperCase()}
  c:
    upstream_token_file: relative/path
  d:
    rate_limit: 10/fortnight
  e:
    burst: 5
  f:
    upstream_token_file: /x
    upstream_token_env: X
  system:
    allow: []
`)).toEqual([
      `3:26 upstream_token_file: cannot read ${missing} (ENOENT)`,
      expect.stringMatching(/^6:25 upstream_token_env: environment variable GSP_SURELY_UNSET_\w+ is not set$/),
      '8:26 upstream_token_file must be an absolute path',
      expect.stringMatching(/^10:17 d\.rate_limit: rate_limit is "N\/second"/),
      '12:12 burst needs a rate_limit',
      '15:25 set upstream_token_file or upstream_token_env, not both',
      '16:3 client name "system" is reserved for the proxy\'s own audit lines',
    ]);
  });

  it('accepts the settings when they resolve, without the token in the loaded policy\'s JSON', () => {
    const secrets = mkdtempSync(join(tmpdir(), 'gsp-secrets-'));
    const value = `glpat-${randomBytes(12).toString('hex')}`;
    writeFileSync(join(secrets, 't'), `${value}\n`);
    const p = loadPolicyDir(dir(`clients:\n  a:\n    upstream_token_file: ${join(secrets, 't')}\n    rate_limit: 600/minute\n    burst: 20\n    allow: []\n`));
    const a = p.clients.get('a')!;
    expect(a.upstreamToken?.()).toBe(value);
    expect(a.rateLimit).toEqual({ text: '600/minute', count: 600, periodMs: 60_000, burst: 20 });
    expect(JSON.stringify(a)).not.toContain(value);
  });
});
