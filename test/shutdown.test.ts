// Graceful shutdown of `serve` as an operator runs it (a real subprocess): on SIGTERM it stops
// accepting, lets the response in flight finish, writes its audit line to disk, and exits 0.
// SIGHUP reloads (and is audited) without stopping anything.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/mint.ts';
import { archiveBytes, startGitLabStandIn, type StandIn } from './support/gitlab-standin.ts';
import { readLines, send, waitFor } from './support/ops.ts';
import { Changes, until } from './support/wait.ts';

const CLI = join(import.meta.dirname, '..', 'src', 'cli.ts');
const POLICY = 'clients:\n  packit:\n    allow:\n      - GET /api/v4/projects/:id\n      - GET /api/v4/projects/:id/repository/archive\n';

interface Serving {
  child: ChildProcess;
  url: string;
  adminUrl: string;
  auditFile: string;
  jwt: string;
  exited: Promise<number | null>;
  stderr: () => string;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function serve(standin: StandIn, token: string, env: Record<string, string> = {}): Promise<Serving> {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-serve-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.yaml'), POLICY);
  const secret = randomBytes(32).toString('hex');
  const auditFile = join(dir, 'audit', 'audit.log');
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '', GITLAB_URL: standin.url, GITLAB_TOKEN: token, PROXY_JWT_SECRET: secret, POLICY_DIR: dir,
      PORT: '0', HOST: '127.0.0.1', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1', AUDIT_LOG: auditFile, ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  cleanup.push(() => void child.kill('SIGKILL'));
  let err = '';
  const output = new Changes();
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
    output.notify();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.once('exit', () => output.notify());
  // The "listening" line names both ports; or the process ended without it.
  await until(output, () => /"adminPort":\d+/.test(err) || child.exitCode !== null, 'the proxy to listen');
  const m = /"port":(\d+).*"adminPort":(\d+)/.exec(err);
  if (!m) throw new Error(`proxy did not start: ${err}`);
  const jwt = await mintToken({
    client: 'packit', audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 600,
    key: { kind: 'secret', secret: new TextEncoder().encode(secret) },
  });
  return { child, url: `http://127.0.0.1:${m[1]}`, adminUrl: `http://127.0.0.1:${m[2]}`, auditFile, jwt, exited, stderr: () => err };
}

function download(url: string, jwt: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => get(url, { headers: { 'PRIVATE-TOKEN': jwt }, agent: false }, resolve).on('error', reject));
}

function refused(url: string): Promise<boolean> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('serve: SIGTERM', () => {
  it('finishes the response in flight, writes its audit line to disk, refuses new connections, and exits 0', async () => {
    const token = `glpat-${randomBytes(12).toString('hex')}`;
    const standin = await startGitLabStandIn({ validTokens: [token] });
    cleanup.push(() => standin.close());
    const s = await serve(standin, token, { SHUTDOWN_TIMEOUT_MS: '10000' });

    // SIGHUP first: a reload, audited, and the proxy keeps serving.
    s.child.kill('SIGHUP');
    await waitFor(() => readLines(s.auditFile).some((l) => l.client === 'system' && l.reason === 'sighup'), 'the SIGHUP reload line');
    expect((await send(`${s.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': s.jwt } })).status).toBe(200);

    // 24 MiB, more than the socket buffers between GitLab, the proxy and the client hold: while
    // the client does not read, the response cannot end, however fast or slow the machine.
    const bytes = 384 * 65_536;
    const res = await download(`${s.url}/api/v4/projects/1/repository/archive?bytes=${bytes}`, s.jwt);
    expect(res.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    const first = new Promise<void>((resolve) => res.once('data', () => resolve()));
    const body = new Promise<Buffer>((resolve, reject) => {
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('aborted', () => reject(new Error('download cut')));
    });
    await first;
    res.pause();
    s.child.kill('SIGTERM');

    await waitFor(() => refused(s.url), 'new connections to be refused');
    const ready = await send(`${s.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text).checks.accepting).toBe(false);
    expect(s.child.exitCode).toBeNull();

    res.resume();
    const got = await body;
    expect(got.length).toBe(bytes);
    expect(got.equals(archiveBytes(bytes))).toBe(true);
    expect(await s.exited).toBe(0);
    const lines = readLines(s.auditFile);
    const line = lines.find((l) => String(l.path).endsWith('/repository/archive'));
    expect(line).toMatchObject({ client: 'packit', status: 200, decision: 'allow', bytesOut: bytes });
    expect(line).not.toHaveProperty('aborted');
    expect(lines.filter((l) => l.client !== 'system')).toHaveLength(2);
    expect(s.stderr()).toMatch(/"msg":"stopped"/);
  });

  it('cuts what is still running after SHUTDOWN_TIMEOUT_MS, audits it as aborted, and exits 0', async () => {
    const token = `glpat-${randomBytes(12).toString('hex')}`;
    const standin = await startGitLabStandIn({ validTokens: [token] });
    cleanup.push(() => standin.close());
    const s = await serve(standin, token, { SHUTDOWN_TIMEOUT_MS: '300' });
    // GitLab sends a first chunk, then nothing for a minute: only the shutdown can end this.
    const res = await download(`${s.url}/api/v4/projects/1/repository/archive?bytes=${2 * 65_536}&delay_ms=60000`, s.jwt);
    const cut = new Promise<boolean>((resolve) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(false));
      res.on('aborted', () => resolve(true));
      res.on('error', () => resolve(true));
    });
    s.child.kill('SIGTERM');
    expect(await cut).toBe(true);
    expect(await s.exited).toBe(0);
    const line = readLines(s.auditFile).find((l) => String(l.path).endsWith('/repository/archive'));
    expect(line).toMatchObject({ client: 'packit', status: 200, aborted: true });
    expect(s.stderr()).toMatch(/shutdown timeout/);
  });
});
