// The README's "Onboarding a vendor" walk-through, as an operator does it: the CLI commands
// (in-process through main(argv, io), with only the operator's environment), the proxy started
// from that same environment the way `serve` starts it, and a vendor's HTTP traffic against a
// GitLab stand-in. (`serve` as a real process, signals and exit codes: cli and shutdown tests.)
//   1. enable a preset in report mode     4. tighten the policy (learned rules + tests)
//   2. drive traffic                      5. switch to enforce
//   3. run learn (and learn --diff)       6. run audit
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { AuditSummary } from '../src/commands/audit-report.ts';
import { loadConfig } from '../src/config/env.ts';
import { startProxy as startServing, type RunningProxy } from '../src/server.ts';
import { runCli } from './support/cli.ts';
import { startGitLabStandIn, type StandIn } from './support/gitlab-standin.ts';

const work = mkdtempSync(join(tmpdir(), 'gsp-walk-'));
const policies = join(work, 'policies');
const auditLog = join(work, 'log', 'audit.log');
mkdirSync(policies);
mkdirSync(join(work, 'log'));

let standin: StandIn;
let env: Record<string, string>;
let proxy: RunningProxy | undefined;

beforeAll(async () => {
  const gitlabToken = `glpat-${randomBytes(15).toString('hex')}`;
  standin = await startGitLabStandIn({ validTokens: [gitlabToken] });
  env = {
    GITLAB_URL: standin.url, GITLAB_TOKEN: gitlabToken,
    PROXY_JWT_SECRET: randomBytes(32).toString('hex'), POLICY_DIR: policies, AUDIT_LOG: auditLog,
    PORT: '0', HOST: '127.0.0.1', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1',
  };
});
afterAll(async () => {
  await proxy?.close();
  await standin?.close();
});

const cli = (...args: string[]) => runCli(args, { env });

/** What `serve` starts from the environment: the proxy with its admin listener and audit log. */
async function startProxy(): Promise<void> {
  proxy = await startServing(loadConfig(env), { ops: pino({ level: 'silent' }), admin: true });
}

/** What SIGTERM does: drain, flush the audit log to disk. */
async function stopProxy(): Promise<void> {
  expect(await proxy!.shutdown(10_000)).toEqual({ forced: false });
  proxy = undefined;
}

async function vendor(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; forwarded: boolean }> {
  const before = standin.requests.length;
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(proxy!.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  await res.arrayBuffer();
  const got = standin.requests.slice(before);
  return { status: res.status, forwarded: got.some((r) => r.method === method && r.url === path) };
}

/** What the Glean connector does on a sync (project 3 is acme/docs). */
const SYNC: [string, string, unknown?][] = [
  ['GET', '/api/v4/user'],
  ['GET', '/api/v4/projects?per_page=100'],
  ['GET', '/api/v4/projects/3'],
  ['GET', '/api/v4/projects/acme%2Fdocs'],
  ['GET', '/api/v4/projects/3/repository/tree?recursive=true'],
  ['GET', '/api/v4/projects/3/repository/files/README.md/raw?ref=main'],
  ['GET', '/api/v4/projects/3/merge_requests?state=all'],
  ['GET', '/api/v4/projects/3/merge_requests/1/notes'],
  // Not in the glean-readonly preset: report mode forwards them as would-deny.
  ['GET', '/api/v4/projects/3/repository/branches'],
  ['POST', '/api/v4/projects/3/hooks', { url: 'https://glean.example.test/hook', push_events: true }],
];

describe('onboarding a vendor (README walk-through)', () => {
  let token: string;

  it('1. enables a preset in report mode', async () => {
    writeFileSync(join(policies, 'glean.yaml'), `# yaml-language-server: $schema=https://example.test/policy.schema.json
clients:
  glean:
    description: Glean enterprise search
    extends: presets/glean-readonly
    mode: report
`);
    const check = await cli('check');
    expect(check.stdout).toMatch(/^ok: 1 clients, 16 rules in 1 files/);
    expect(check.code).toBe(0);
    const t = await cli('token', '--client', 'glean', '--expires-in', '30d');
    expect(t.code).toBe(0);
    token = t.stdout.trim();
    expect((await cli('explain', '--client', 'glean', 'GET', '/api/v4/projects/3')).stdout).toMatch(/^allow\tGET \/api\/v4\/projects\/:id \(.*policies\/presets\/glean-readonly\.yaml:\d+\)/);
    expect((await cli('explain', '--client', 'glean', 'GET', '/api/v4/projects/3/repository/branches')).stdout).toMatch(/^would-deny\tno-rule/);
  });

  it('2. drives traffic: everything the vendor does reaches GitLab, the token endpoints do not', async () => {
    await startProxy();
    for (const [method, path, body] of SYNC) {
      const r = await vendor(token, method, path, body);
      expect({ call: `${method} ${path}`, ...r, status: r.status < 400 || r.status === 404 }).toEqual({ call: `${method} ${path}`, forwarded: true, status: true });
    }
    // Report mode does not lift the fixed denials.
    expect(await vendor(token, 'GET', '/api/v4/personal_access_tokens/self')).toEqual({ status: 403, forwarded: false });
    await stopProxy();
    // logrotate: the first day's log is compressed.
    writeFileSync(`${auditLog}.1.gz`, gzipSync(readFileSync(auditLog)));
    renameSync(auditLog, `${auditLog}.rotated`);
  });

  let learned: string;
  it('3. runs learn, and learn --diff against the preset', async () => {
    const diff = await cli('learn', '--client', 'glean', '--diff', `${auditLog}.1.gz`);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/^\+ GET \/api\/v4\/projects\/:id\/repository\/branches\s+# 1 call, 1 would-deny \[read\]$/m);
    expect(diff.stdout).toMatch(/^\+ POST \/api\/v4\/projects\/:id\/hooks\s+# 1 call, 1 would-deny \[exfiltration\]$/m);
    expect(diff.stdout).toMatch(/^- GET \/api\/v4\/projects\/:id\/wikis\s+# never used/m);
    expect(diff.stdout).toMatch(/^ {2}GET \/api\/v4\/projects\/:id\s+# 2 calls/m);
    const r = await cli('learn', '--client', 'glean', `${auditLog}.1.gz`);
    expect(r.code).toBe(0);
    learned = r.stdout;
    expect(learned).not.toMatch(/wikis|personal_access_tokens|^ +mode:/m);
  });

  it('4. tightens the policy: the learned rules, with tests, pass check', async () => {
    writeFileSync(join(policies, 'glean.yaml'), learned);
    appendFileSync(join(policies, 'glean.yaml'), `    tests:
      - allow: GET /api/v4/projects/3/repository/branches
      - allow: POST /api/v4/projects/3/hooks
      - deny: GET /api/v4/projects/3/wikis
      - deny: DELETE /api/v4/projects/3
`);
    const check = await cli('check');
    expect(check.stdout).toMatch(/^ok: 1 clients, 9 rules in 1 files .*; 4 tests passed$/m);
    expect(check.code).toBe(0);
    // A test that fails is a problem at its line, as an operator's CI would see it.
    appendFileSync(join(policies, 'glean.yaml'), '      - allow: GET /api/v4/projects/3/wikis\n');
    const failing = await cli('check');
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/glean\.yaml:\d+:9 test failed: GET \/api\/v4\/projects\/3\/wikis should be allowed, but is denied: no-rule/);
    writeFileSync(join(policies, 'glean.yaml'), readFileSync(join(policies, 'glean.yaml'), 'utf8').replace(/ {6}- allow: GET \/api\/v4\/projects\/3\/wikis\n/, ''));
    expect((await cli('check')).code).toBe(0);
  });

  it('5. switches to enforce: what the vendor did still works, the rest is refused', async () => {
    expect(readFileSync(join(policies, 'glean.yaml'), 'utf8')).not.toMatch(/^ +mode:/m);
    await startProxy();
    for (const [method, path, body] of SYNC) {
      const r = await vendor(token, method, path, body);
      expect({ call: `${method} ${path}`, forwarded: r.forwarded }).toEqual({ call: `${method} ${path}`, forwarded: true });
    }
    expect(await vendor(token, 'GET', '/api/v4/projects/3/wikis')).toEqual({ status: 403, forwarded: false });
    expect(await vendor(token, 'DELETE', '/api/v4/projects/3')).toEqual({ status: 403, forwarded: false });
    await stopProxy();
  });

  it('6. runs audit over the current and the rotated, gzipped log', async () => {
    const json = await cli('audit', '--json', '--client', 'glean', auditLog, `${auditLog}.1.gz`);
    expect(json.code).toBe(0);
    const s = JSON.parse(json.stdout) as AuditSummary;
    expect(s.clients).toHaveLength(1);
    expect(s.clients[0]).toMatchObject({
      client: 'glean',
      calls: 2 * SYNC.length + 3,
      allowed: 2 * SYNC.length - 2,
      wouldDeny: 2,
      denied: 3,
    });
    expect(s.clients[0]!.topEndpoints[0]).toEqual({ endpoint: 'GET /api/v4/projects/:id', calls: 4, denied: 0, wouldDeny: 0 });
    const wouldDeny = JSON.parse((await cli('audit', '--json', '--decision', 'would-deny', auditLog, `${auditLog}.1.gz`)).stdout) as AuditSummary;
    expect(wouldDeny.clients[0]!.topEndpoints.map((e) => e.endpoint).sort()).toEqual(['GET /api/v4/projects/:id/repository/branches', 'POST /api/v4/projects/:id/hooks']);
    const table = await cli('audit', auditLog, `${auditLog}.1.gz`);
    expect(table.stdout).toMatch(new RegExp(`^glean\\s+${2 * SYNC.length + 3}\\s+${2 * SYNC.length - 2}\\s+3\\s+2\\s`, 'm'));
  });
});
