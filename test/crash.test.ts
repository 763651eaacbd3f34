// An uncaught error in the proxy: the audit lines of every request answered before it are on
// disk, even those still in the writer's batch, and the process exits 1.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
// Loaded before the proxy: throws outside any handler when the test sends SIGUSR2, which it
// does once the proxy listens and has answered requests (an event, never a fixed delay).
const BOMB = 'data:text/javascript,process.on("SIGUSR2",()=>setImmediate(()=>{throw new Error("injected failure")}))';
/** Requests answered before the failure is injected; more may be answered while it unwinds. */
const BEFORE_CRASH = 20;

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
  // Requests flow until the process is gone; the failure is injected while they do.
  let answered = 0;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v4/projects/1`);
      await res.arrayBuffer();
      answered++;
    } catch {
      break; // the process is gone
    }
    if (answered === BEFORE_CRASH) child.kill('SIGUSR2');
  }
  expect(await exited).toBe(1);
  expect(err).toContain('uncaught error');
  expect(err).toContain('injected failure');
  expect(answered).toBeGreaterThanOrEqual(BEFORE_CRASH);
  const lines = readFileSync(auditLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { status: number });
  expect(lines.length).toBeGreaterThanOrEqual(answered);
  expect(lines.filter((l) => l.status === 401).length).toBeGreaterThanOrEqual(answered);
});
