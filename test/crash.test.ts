// An uncaught error in the proxy: the audit lines of every request answered before it are on
// disk, even those still in the writer's batch, and the process exits 1.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
// Loaded before the proxy: throws outside any handler once requests are flowing.
const BOMB = 'data:text/javascript,setTimeout(()=>{throw new Error("injected failure")},1500)';

it('flushes the audit log and exits 1 on an uncaught error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-crash-'));
  writeFileSync(join(dir, 'a.yaml'), 'clients:\n  v:\n    allow: [GET /api/v4/projects/:id]\n');
  const auditLog = join(dir, 'audit.log');
  const child = spawn(process.execPath, ['--import', BOMB, CLI, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '', GITLAB_URL: 'http://127.0.0.1:9', GITLAB_TOKEN: randomBytes(16).toString('hex'),
      PROXY_JWT_SECRET: randomBytes(32).toString('hex'), POLICY_DIR: dir, PORT: '0', ADMIN_PORT: '0', HOST: '127.0.0.1', AUDIT_LOG: auditLog,
    },
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /"port":(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error(`exited before listening: ${err}`)));
  });
  let answered = 0;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v4/projects/1`);
      await res.arrayBuffer();
      answered++;
    } catch {
      break; // the process is gone
    }
  }
  expect(await exited).toBe(1);
  expect(err).toContain('uncaught error');
  expect(answered).toBeGreaterThan(10);
  const lines = readFileSync(auditLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { status: number });
  expect(lines.length).toBeGreaterThanOrEqual(answered);
  expect(lines.filter((l) => l.status === 401).length).toBeGreaterThanOrEqual(answered);
});
