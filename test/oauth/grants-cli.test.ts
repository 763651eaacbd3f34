// `gitlab-scope-proxy grants list|revoke` against a real SQLite file: the command as an
// operator runs it once, the listing and edge cases through the same functions in-process.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { listGrants, revokeGrants } from '../../src/commands/grants.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { Grant } from '../../src/store/store.ts';
import { runCli } from '../support/cli.ts';

const CLI = join(import.meta.dirname, '../../src/cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'gsp-grants-'));
const env = { PATH: process.env.PATH ?? '', SQLITE_FILE: join(dir, 'state.sqlite'), AUDIT_LOG: join(dir, 'audit.log') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const grant = (id: string, client: string, approver: string): Grant => ({
  id, client, clientId: `${client}-app`, scope: 'api', approver: { username: approver, id: 7 }, createdAt: Date.UTC(2026, 0, 1),
  refreshExpiresAt: Date.now() + 86_400_000, revokedAt: undefined, revokedReason: undefined,
});
const A = 'a'.repeat(32);

it('revokes one client\'s grants from the command line, with an audit line each, and lists them', async () => {
  const store = new SqliteStore(env.SQLITE_FILE);
  await store.createGrant(grant(A, 'zoom', 'alice'), 'h1');
  await store.createGrant(grant('b'.repeat(32), 'zoom', 'bob'), 'h2');
  await store.createGrant(grant('c'.repeat(32), 'calero', 'alice'), 'h3');

  const revoke = spawnSync(process.execPath, [CLI, 'grants', 'revoke', '--client', 'zoom'], { env, encoding: 'utf8', timeout: 15_000 });
  expect(revoke.status).toBe(0);
  expect(revoke.stdout).toContain(`revoked ${A} (zoom, approved by alice)`);
  const lines = readFileSync(env.AUDIT_LOG, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.map((l) => [l.client, l.reason, (l.oauth as { approver: string }).approver])).toEqual([
    ['zoom', 'oauth-revoked-by-operator', 'alice'], ['zoom', 'oauth-revoked-by-operator', 'bob'],
  ]);

  // The store the command wrote is the one the proxies read.
  const out: string[] = [];
  const io = { store, auditLog: env.AUDIT_LOG, out: (l: string) => out.push(l) };
  expect(await listGrants(io, false)).toBe(0);
  expect(out[0]).toMatch(/^ID\s+CLIENT\s+APPROVER\s+CREATED\s+REFRESH EXPIRES\s+STATUS$/);
  expect(out[1]).toMatch(new RegExp(`^${A}\\s+zoom\\s+alice\\s+2026-01-01T00:00:00Z\\s+\\S+\\s+revoked \\S+ \\(revoked\\)$`));
  expect(out[3]).toMatch(/calero\s+alice\s+.*\s+active$/);
  out.length = 0;
  await listGrants(io, true);
  expect(Object.fromEntries((JSON.parse(out[0]!) as { id: string; status: string }[]).map((g) => [g.id[0], g.status]))).toEqual({ a: 'revoked', b: 'revoked', c: 'active' });
  out.length = 0;
  expect(await revokeGrants(io, { id: A })).toBe(1);
  expect(out).toEqual([`no active grant ${A}`]);
  await store.close();
});

it('names a SQLITE_FILE that does not exist instead of creating an empty store there', async () => {
  const typo = join(dir, 'stat.sqlite');
  for (const args of [['grants', 'list'], ['grants', 'revoke', '--client', 'zoom']]) {
    const run = await runCli(args, { env: { SQLITE_FILE: typo } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`SQLITE_FILE ${typo} does not exist`);
    expect(run.stdout).toBe('');
  }
  expect(existsSync(typo)).toBe(false);
});
