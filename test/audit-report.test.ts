// `audit` as an operator runs it on rotated logs: per-client counts, endpoints, statuses,
// time span and volume, with filters, as a table and as JSON.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { AuditSummary } from '../src/commands/audit-report.ts';
import { line } from './support/audit-fixture.ts';
import { runCli } from './support/cli.ts';

const run = (args: string[], input?: string) => runCli(['audit', ...args], input !== undefined ? { input } : {});

const at = (iso: string) => ({ time: iso });

// Three files as logrotate leaves them: the oldest compressed.
const OLDEST = [
  line('renovate', 'GET', '/api/v4/projects/acme%2Fapp', 'allow', { ...at('2024-05-01T08:00:00.000Z'), bytesOut: 2048 }),
  line('renovate', 'GET', '/api/v4/projects/acme%2Fapp/merge_requests/3', 'allow', { ...at('2024-05-01T08:01:00.000Z'), bytesOut: 1024 }),
];
const OLDER = [
  line('renovate', 'POST', '/api/v4/projects/acme%2Fapp/merge_requests', 'allow', { ...at('2024-05-02T09:00:00.000Z'), status: 201, bytesIn: 500, bytesOut: 900 }),
  line('renovate', 'GET', '/api/v4/projects/acme%2Fapp/merge_requests/4', 'allow', { ...at('2024-05-02T09:00:30.000Z'), status: 404, bytesOut: 30 }),
  line('renovate', 'DELETE', '/api/v4/projects/12', 'deny', at('2024-05-02T09:01:00.000Z')),
];
const CURRENT = [
  line('glean', 'GET', '/api/v4/projects/3/wikis', 'would-deny', { ...at('2024-05-03T10:00:00.000Z'), bytesOut: 10_000 }),
  line('glean', 'GET', '/api/v4/projects/4/wikis', 'would-deny', { ...at('2024-05-03T10:00:01.000Z'), bytesOut: 10_000 }),
  line('glean', 'GET', '/api/v4/projects/3', 'allow', at('2024-05-03T10:00:02.000Z')),
  line(null, 'GET', '/api/v4/projects/3', 'deny', { ...at('2024-05-03T11:00:00.000Z'), status: 401 }),
  line('renovate', 'GET', '/api/v4/projects/acme%2Fapp/merge_requests/5', 'allow', at('2024-05-03T12:00:00.000Z')),
];

function rotated(): string[] {
  const d = mkdtempSync(join(tmpdir(), 'gsp-audit-'));
  // A reload line (client "system") is about the proxy, not a request.
  const reload = JSON.stringify({ time: '2024-05-03T09:00:00.000Z', client: 'system', decision: 'reload', reason: 'sighup', checksum: 'a'.repeat(64) });
  writeFileSync(join(d, 'audit.log'), [reload, ...CURRENT].join('\n') + '\n');
  writeFileSync(join(d, 'audit.log.1'), OLDER.join('\n') + '\n');
  writeFileSync(join(d, 'audit.log.2.gz'), gzipSync(OLDEST.join('\n') + '\n'));
  return ['audit.log', 'audit.log.1', 'audit.log.2.gz'].map((f) => join(d, f));
}

describe('audit', () => {
  it('summarises rotated and gzipped logs per client as JSON', async () => {
    const r = await run(['--json', ...rotated()]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as AuditSummary;
    expect(s).toMatchObject({ records: 10, matched: 10, skippedLines: 0, systemLines: 1, errors: [] });
    expect(s.clients.map((c) => c.client)).toEqual(['glean', 'renovate', null]);
    const renovate = s.clients[1]!;
    expect(renovate).toEqual({
      client: 'renovate', calls: 6, allowed: 5, denied: 1, wouldDeny: 0, local: 0,
      firstSeen: '2024-05-01T08:00:00.000Z', lastSeen: '2024-05-03T12:00:00.000Z',
      bytesIn: 500, bytesOut: 2048 + 1024 + 900 + 30 + 120 + 120,
      statuses: { '200': 3, '201': 1, '403': 1, '404': 1 },
      topEndpoints: [
        { endpoint: 'GET /api/v4/projects/:id/merge_requests/:iid', calls: 3, denied: 0, wouldDeny: 0 },
        { endpoint: 'DELETE /api/v4/projects/:id', calls: 1, denied: 1, wouldDeny: 0 },
        { endpoint: 'GET /api/v4/projects/:id', calls: 1, denied: 0, wouldDeny: 0 },
        { endpoint: 'POST /api/v4/projects/:id/merge_requests', calls: 1, denied: 0, wouldDeny: 0 },
      ],
    });
    expect(s.clients[0]).toMatchObject({ calls: 3, wouldDeny: 2, bytesOut: 20_120, topEndpoints: [{ endpoint: 'GET /api/v4/projects/:id/wikis', calls: 2, wouldDeny: 2 }, { endpoint: 'GET /api/v4/projects/:id', calls: 1 }] });
    expect(s.clients[2]).toMatchObject({ client: null, calls: 1, denied: 1, statuses: { '401': 1 } });
  });

  it('filters by client, time (ISO or relative) and decision', async () => {
    const files = rotated();
    const json = async (args: string[]) => JSON.parse((await run(['--json', ...args, ...files])).stdout) as AuditSummary;
    expect((await json(['--client', 'glean'])).clients.map((c) => [c.client, c.calls])).toEqual([['glean', 3]]);
    expect((await json(['--since', '2024-05-02T00:00:00Z', '--until', '2024-05-02T23:59:59Z'])).matched).toBe(3);
    expect((await json(['--decision', 'would-deny,deny'])).clients.map((c) => [c.client, c.calls])).toEqual([['glean', 2], ['renovate', 1], [null, 1]]);
    const now = Date.now();
    const recent = [
      line('zoom', 'GET', '/api/v4/user', 'allow', at(new Date(now - 2 * 3600_000).toISOString())),
      line('zoom', 'GET', '/api/v4/projects', 'allow', at(new Date(now - 10 * 60_000).toISOString())),
    ].join('\n');
    const r = await run(['--json', '--since', '1h'], recent);
    expect((JSON.parse(r.stdout) as AuditSummary).clients[0]).toMatchObject({ client: 'zoom', calls: 1, topEndpoints: [{ endpoint: 'GET /api/v4/projects' }] });
  });

  it('prints a table for people, and exits 1 when nothing matches', async () => {
    const files = rotated();
    const r = await run(files);
    expect(r.code).toBe(0);
    const [head, ...rows] = r.stdout.split('\n');
    expect(head).toMatch(/^client\s+calls\s+allow\s+deny\s+would-deny\s+first seen\s+last seen\s+in\s+out$/);
    expect(rows[0]).toMatch(/^glean\s+3\s+1\s+0\s+2\s+2024-05-03T10:00:00.000Z\s+2024-05-03T10:00:02.000Z\s+0 B\s+19.6 KiB$/);
    expect(rows[1]).toMatch(/^renovate\s+6\s+5\s+1\s+0\s/);
    expect(r.stdout).toMatch(/renovate\n {2}status {2}200: 3 {2}201: 1 {2}403: 1 {2}404: 1\n {2}top endpoints\n {4}3 {2}GET \/api\/v4\/projects\/:id\/merge_requests\/:iid\n/);
    expect(r.stdout).toMatch(/ {4}1 {2}DELETE \/api\/v4\/projects\/:id {2}\(1 denied\)/);
    const none = await run(['--client', 'nobody', ...files]);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/no audit records match \(10 read\)/);
  });

  it('refuses bad options with exit 2, and reports unreadable files', async () => {
    expect((await run(['--since', 'yesterday'])).code).toBe(2);
    expect((await run(['--decision', 'maybe'])).code).toBe(2);
    const missing = await run(['/nonexistent/audit.log']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/warning: \/nonexistent\/audit\.log: no such file/);
  });
});
