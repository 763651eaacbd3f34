// A proxy started the way `serve` starts it (admin listener, audit log to a file, optional
// file watches), for the operations tests: reload, metrics, faults, TLS. Unlike harness.ts it
// lets a test choose the upstream (a stand-in or a raw server that misbehaves) and reads the
// audit log back from disk. Requests go through `send`, which opens one connection per
// request (no pool), so the proxy's open connections can be counted exactly.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { mintToken } from '../../src/auth/mint.ts';
import { loadConfig } from '../../src/config/env.ts';
import { startProxy, type RunningProxy } from '../../src/server.ts';
import { Changes, GUARD_MS, until } from './wait.ts';

export type Line = Record<string, unknown>;

export interface Rig {
  dir: string;
  policyDir: string;
  auditFile: string;
  proxy: RunningProxy;
  url: string;
  adminUrl: string;
  jwtSecret: string;
  /** The application (ops) log, parsed. */
  opsLines: Line[];
  token: (client: string, opts?: { secret?: string }) => Promise<string>;
  /** The audit file's lines, parsed (read from disk on each call). */
  auditLines: () => Line[];
  /** Notified when the audit file's directory changes or an ops line is logged. */
  changes: Changes;
  /** Resolves with the result of `check` once it is truthy, re-checked on each change. */
  until: <T>(check: () => T | undefined | null | false, what: string) => Promise<T>;
  /** Value of a metric from /metrics on the admin port: the sum over series matching `labels`. */
  metric: (name: string, labels?: Record<string, string>) => Promise<number | undefined>;
  close: () => Promise<void>;
}

export interface RigOptions {
  policies: Record<string, string>;
  /** Must name GITLAB_URL and GITLAB_TOKEN (or GITLAB_TOKEN_FILE). */
  env: Record<string, string>;
  watch?: boolean;
  auditRetryMs?: number;
  /** Written into POLICY_DIR as-is instead of `policies` (the test lays the folder out). */
  policyDir?: string;
  /** The rate limiter's clock in ms (StartOptions.clock), for tests that step time. */
  clock?: () => number;
}

export async function startRig(opts: RigOptions): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-ops-'));
  const policyDir = opts.policyDir ?? join(dir, 'policies');
  if (!opts.policyDir) {
    mkdirp(policyDir);
    for (const [name, text] of Object.entries(opts.policies)) writeFileSync(join(policyDir, name), text);
  }
  const jwtSecret = randomBytes(32).toString('base64url');
  const auditFile = opts.env.AUDIT_LOG ?? join(dir, 'audit', 'audit.log');
  const opsLines: Line[] = [];
  const changes = new Changes();
  const ops = pino({ level: 'info' }, {
    write: (s: string) => {
      opsLines.push(JSON.parse(s) as Line);
      changes.notify();
    },
  });
  // The audit file is written by the proxy's own asynchronous writer: its directory's change
  // events tell a waiting test when to read it again.
  mkdirp(dirname(auditFile));
  const auditWatch = watch(dirname(auditFile), { persistent: false }, () => changes.notify());
  const config = loadConfig({
    PROXY_JWT_SECRET: jwtSecret,
    POLICY_DIR: policyDir,
    PORT: '0',
    HOST: '127.0.0.1',
    ADMIN_PORT: '0',
    ADMIN_HOST: '127.0.0.1',
    AUDIT_LOG: auditFile,
    ...opts.env,
  });
  const proxy = await startProxy(config, {
    ops, admin: true, watch: opts.watch ?? false,
    ...(opts.auditRetryMs ? { auditRetryMs: opts.auditRetryMs } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const adminUrl = proxy.adminUrl!;
  return {
    dir,
    policyDir,
    auditFile,
    proxy,
    url: proxy.url,
    adminUrl,
    jwtSecret,
    opsLines,
    token: (client, o = {}) =>
      mintToken({
        client,
        audience: config.jwt.audience,
        issuer: config.jwt.issuer,
        expiresInSeconds: 3600,
        key: { kind: 'secret', secret: new TextEncoder().encode(o.secret ?? jwtSecret) },
      }),
    auditLines: () => readLines(auditFile),
    changes,
    until: (check, what) => until(changes, check, what),
    metric: async (name, labels = {}) => parseMetric((await send(`${adminUrl}/metrics`)).text, name, labels),
    close: async () => {
      auditWatch.close();
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function mkdirp(path: string): void {
  mkdirSync(path, { recursive: true });
}

/** The complete lines of a JSON-lines file (a line still being written is left out). */
export function readLines(file: string): Line[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  lines.pop(); // after the last newline: empty, or a line not yet whole
  return lines.filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
}

/**
 * Polls `check` every 20 ms until it holds, or throws naming `what` after the guard timeout.
 * Only for state that announces no event (socket counts, connection pools, a served
 * certificate); whatever has one (requests, audit and ops lines) is waited on with `until`.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = GUARD_MS): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Sent {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One request on its own connection (closed afterwards). `ca` for an https URL. */
export function send(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca?: string; signal?: AbortSignal } = {}): Promise<Sent> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, {
      method: init.method ?? 'GET',
      headers: { connection: 'close', ...init.headers },
      agent: false,
      ...(init.ca ? { ca: init.ca } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export function parseMetric(text: string, name: string, labels: Record<string, string>): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[l[1]!] = l[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

/** Open connections to `server` (node:http). */
export function connections(server: { getConnections: (cb: (err: Error | null, n: number) => void) => void }): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}
