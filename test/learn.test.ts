// `learn` as an operator runs it: audit logs in (files, gzip, standard input), a policy out
// that passes `check` and allows every call it was learned from, and nothing more general
// than the rules the calls needed.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../src/audit/audit.ts';
import { compilePolicy } from '../src/policy/load.ts';
import { decideDescribed, offlineResolver } from '../src/decision/offline.ts';
import { line } from './support/audit-fixture.ts';
import { runCli } from './support/cli.ts';

const run = (args: string[], input?: string | Buffer) => runCli(args, input !== undefined ? { input } : {});

const dir = (): string => mkdtempSync(join(tmpdir(), 'gsp-learn-'));

const GLEAN_TRAFFIC = [
  line('glean', 'GET', '/api/v4/projects', 'allow'),
  line('glean', 'GET', '/api/v4/projects', 'allow'),
  line('glean', 'GET', '/api/v4/projects/3', 'allow'),
  line('glean', 'GET', '/api/v4/projects/acme%2Fdocs', 'allow'),
  line('glean', 'HEAD', '/api/v4/projects/7', 'allow'),
  line('glean', 'GET', '/api/v4/projects/3/repository/files/docs%2Fguide.md/raw', 'allow'),
  line('glean', 'GET', '/api/v4/projects/3/repository/files/README%2Emd/raw', 'allow'),
  line('glean', 'GET', '/api/v4/projects/3/merge_requests/12/notes', 'allow'),
  line('glean', 'GET', '/api/v4/projects/3/merge_requests/13/notes', 'allow'),
  line('glean', 'GET', '/api/v4/projects/3/repository/commits/e83c5163316f89bfbde7d9ab23ca2e25604af290', 'would-deny'),
  line('glean', 'GET', '/api/v4/projects/3/repository/commits/e83c516', 'would-deny'),
  line('glean', 'POST', '/api/v4/projects/3/hooks', 'allow'),
  line('glean', 'GET', '/api/v4/projects/3/hooks', 'allow'),
  line('glean', 'GET', '/api/v4/groups/acme', 'would-deny'),
  line('glean', 'GET', '/api/v4/personal_access_tokens/self', 'allow', { rule: 'allow_token_self_read' }),
  line('glean', 'GET', '/api/v4', 'would-deny'),
  // Not learned from: denials, other clients, answers the proxy gave itself.
  line('glean', 'DELETE', '/api/v4/projects/3', 'deny'),
  line('glean', 'OPTIONS', '/api/v4/projects/3', 'local'),
  line('zoom', 'GET', '/api/v4/user', 'allow'),
  line(null, 'GET', '/api/v4/projects/1', 'deny'),
  line('glean', 'POST', '/api/v4/projects/3/access_tokens', 'allow'),
];

describe('learn', () => {
  it('prints the smallest policy that covers what the client did, with hit counts, and it passes check', async () => {
    const d = dir();
    writeFileSync(join(d, 'audit.log'), GLEAN_TRAFFIC.join('\n') + '\n');
    const r = await run(['learn', '--client', 'glean', join(d, 'audit.log')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rules = r.stdout.split('\n').filter((l) => l.startsWith('      - ')).map((l) => l.slice(8).replace(/\s+#.*$/, ''));
    expect(rules).toEqual([
      'GET /api/v4/groups/:id',
      'GET /api/v4/projects',
      'GET /api/v4/projects/:id',
      'GET,POST /api/v4/projects/:id/hooks',
      'GET /api/v4/projects/:id/merge_requests/:iid/notes',
      'GET /api/v4/projects/:id/repository/commits/:sha',
      'GET /api/v4/projects/:id/repository/files/:file_path/raw',
    ]);
    // Each rule is a GitLab route's template, flagged with its risk class.
    expect(r.stdout).toMatch(/- GET \/api\/v4\/projects\/:id\s+# 3 calls \(GET 2, HEAD 1\) \[read\]\n/);
    expect(r.stdout).toMatch(/- GET \/api\/v4\/projects\/:id\/repository\/commits\/:sha\s+# 2 calls, 2 would-deny \[read\]\n/);
    expect(r.stdout).toMatch(/- GET,POST \/api\/v4\/projects\/:id\/hooks\s+# 2 calls \(GET 1, POST 1\) \[exfiltration\]\n/);
    // A floor route (here from a log written before the floor existed) is never proposed.
    expect(r.stdout).toContain('# Not proposed (the proxy\'s floor refuses it): POST /api/v4/projects/:id/access_tokens (credential) (1)');
    expect(r.stdout).toContain('    allow_token_self_read: true  # 1 call\n');
    expect(r.stdout).toContain('# Not covered (no rule can name it): GET /api/v4 (1)');
    expect(r.stdout).not.toMatch(/DELETE|zoom|OPTIONS/);

    const policyDir = dir();
    writeFileSync(join(policyDir, 'glean.yaml'), r.stdout);
    const check = await run(['check', '--policies', policyDir]);
    expect(check.stdout).toMatch(/^ok: 1 clients, 7 rules in 1 files/);
    expect(check.code).toBe(0);

    // Every call it learned from is allowed by what it printed; the denied one is not.
    const client = compilePolicy([{ display: 'glean.yaml', text: r.stdout }]).clients.get('glean')!;
    for (const text of GLEAN_TRAFFIC) {
      const rec = JSON.parse(text) as AuditRecord;
      if (rec.client !== 'glean' || rec.path === '/api/v4' || rec.method === 'OPTIONS' || rec.path.endsWith('/access_tokens')) continue;
      expect({ call: `${rec.method} ${rec.path}`, allowed: (await decideDescribed(client, { method: rec.method, target: rec.path }, offlineResolver)).verdict === 'allow' })
        .toEqual({ call: `${rec.method} ${rec.path}`, allowed: rec.decision !== 'deny' });
    }
  });

  it('reads gzip files by extension or by their magic bytes, and standard input', async () => {
    const d = dir();
    const text = GLEAN_TRAFFIC.join('\n') + '\n';
    writeFileSync(join(d, 'audit.log.2.gz'), gzipSync(text));
    writeFileSync(join(d, 'audit.log.1'), gzipSync(text)); // gzipped, without the extension
    const files = await run(['learn', '--client', 'glean', join(d, 'audit.log.1'), join(d, 'audit.log.2.gz')]);
    expect(files.code).toBe(0);
    expect(files.stdout).toMatch(/- GET \/api\/v4\/projects\/:id\s+# 6 calls \(GET 4, HEAD 2\)/);
    const stdin = await run(['learn', '--client', 'glean'], gzipSync(text));
    expect(stdin.code).toBe(0);
    expect(stdin.stdout).toMatch(/- GET \/api\/v4\/projects\/:id\s+# 3 calls/);
    const plainStdin = await run(['learn', '--client', 'glean', '-'], text);
    expect(plainStdin.stdout).toBe(stdin.stdout);
  });

  it('skips lines that are not audit records and says so', async () => {
    const r = await run(['learn', '--client', 'zoom'], ['not json', '{"level":30,"msg":"listening"}', GLEAN_TRAFFIC[18]].join('\n'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/- GET \/api\/v4\/user\s+# 1 call \[read\]\n/);
    expect(r.stderr).toMatch(/2 lines are not audit records/);
  });

  it('has --help, like every command, and is listed in the main help', async () => {
    for (const cmd of ['learn', 'audit', 'schema']) {
      const r = await run([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: gitlab-scope-proxy ${cmd}`);
    }
    expect((await run(['--help'])).stdout).toMatch(/learn .*\n.*audit .*\n.*schema /);
  });

  it('exits 1 when the client made no call to learn from, and 2 without --client', async () => {
    const none = await run(['learn', '--client', 'nobody'], GLEAN_TRAFFIC.join('\n'));
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/no allowed or would-deny calls of client "nobody"/);
    const usage = await run(['learn']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--client is required/);
  });

  it('--diff shows rules used, rules never used and rules missing, against a client extending a preset', async () => {
    const policyDir = dir();
    writeFileSync(join(policyDir, 'glean.yaml'), 'clients:\n  glean:\n    extends: presets/glean\n    settings: { webhook_url: "https://hooks.glean.example/gitlab" }\n    mode: report\n');
    const r = await run(['learn', '--client', 'glean', '--diff', '--policies', policyDir], GLEAN_TRAFFIC.join('\n'));
    expect(r.code).toBe(1);
    const rows = r.stdout.split('\n').filter((l) => /^[ +-] /.test(l));
    expect(rows).toEqual(expect.arrayContaining([
      expect.stringMatching(/^ {2}GET \/api\/v4\/projects\/:id\s+# 3 calls \(policies\/presets\/glean\.yaml:\d+\)$/),
      expect.stringMatching(/^ {2}GET \/api\/v4\/projects\/:id\/hooks\s+# 1 call \(policies\/presets\/glean\.yaml:\d+\)$/),
      // The pinned POST rule: its body constraint cannot be checked from an audit line.
      expect.stringMatching(/^ {2}POST \/api\/v4\/projects\/:id\/hooks\s+# 1 call \(policies\/presets\/glean\.yaml:\d+\)$/),
      expect.stringMatching(/^- GET \/api\/v4\/projects\/:id\/wikis\s+# never used \(policies\/presets\/glean\.yaml:\d+\)$/),
      expect.stringMatching(/^\+ GET \/api\/v4\/projects\/:id\/repository\/commits\/:sha\s+# 2 calls, 2 would-deny \[read\]$/),
      expect.stringMatching(/^\+ GET \/api\/v4\/groups\/:id\s+# 1 call, 1 would-deny \[read\]$/),
      expect.stringMatching(/^\+ allow_token_self_read: true\s+# 1 call$/),
    ]));
    expect(rows.filter((l) => l.startsWith('-'))).toHaveLength(12);
  });
});
