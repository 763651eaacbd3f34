// `gitlab-scope-proxy grants list|revoke` against a real SQLite file, as an operator runs it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Grant } from '../../src/store/store.ts';

const CLI = join(import.meta.dirname, '../../src/cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'gsp-grants-'));
const env = { PATH: process.env.PATH ?? '', SQLITE_FILE: join(dir, 'state.sqlite'), AUDIT_LOG: join(dir, 'audit.log') };
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'grants', ...args], { env, encoding: 'utf8', timeout: 15_000 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const grant = (id: string, client: string, approver: string): Grant => ({
  id, client, clientId: `${client}-app`, scope: 'api', approver: { username: approver, id: 7 }, createdAt: Date.UTC(2026, 0, 1),
  refreshExpiresAt: Date.now() + 86_400_000, revokedAt: undefined, revokedReason: undefined,
});

it('lists grants and revokes one client\'s, with an audit line each', async () => {
  const store = new SqliteStore(env.SQLITE_FILE);
  await store.createGrant(grant('a'.repeat(32), 'zoom', 'alice'), 'h1');
  await store.createGrant(grant('b'.repeat(32), 'zoom', 'bob'), 'h2');
  await store.createGrant(grant('c'.repeat(32), 'calero', 'alice'), 'h3');
  await store.close();

  const list = run('list');
  expect(list.status).toBe(0);
  expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+CLIENT\s+APPROVER\s+CREATED\s+REFRESH EXPIRES\s+STATUS$/);
  expect(list.stdout).toMatch(new RegExp(`${'a'.repeat(32)}\\s+zoom\\s+alice\\s+2026-01-01T00:00:00Z\\s+\\S+\\s+active`));

  const revoke = run('revoke', '--client', 'zoom');
  expect(revoke.status).toBe(0);
  expect(revoke.stdout).toContain(`revoked ${'a'.repeat(32)} (zoom, approved by alice)`);
  const lines = readFileSync(env.AUDIT_LOG, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.map((l) => [l.client, l.reason, (l.oauth as { approver: string }).approver])).toEqual([
    ['zoom', 'oauth-revoked-by-operator', 'alice'], ['zoom', 'oauth-revoked-by-operator', 'bob'],
  ]);

  const json = JSON.parse(run('list', '--json').stdout) as { id: string; status: string }[];
  expect(Object.fromEntries(json.map((g) => [g.id[0], g.status]))).toEqual({ a: 'revoked', b: 'revoked', c: 'active' });
});

it('says so and exits 1 when nothing matches', () => {
  const r = spawnSync(process.execPath, [CLI, 'grants', 'revoke', 'f'.repeat(32)], { env: { ...env, SQLITE_FILE: join(dir, 'empty.sqlite') }, encoding: 'utf8', timeout: 15_000 });
  expect([r.status, r.stdout.trim()]).toEqual([1, `no active grant ${'f'.repeat(32)}`]);
});
