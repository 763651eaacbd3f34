// Starts a GitLab stand-in and the proxy in front of it on loopback ports, with a policy
// written to a temporary directory and the audit log captured as parsed JSON lines.
// Secrets (the real token, the JWT key) are generated per harness and never written to disk
// except the policy directory.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { auditLogTo, type AuditRecord } from '../../src/audit/audit.ts';
import { mintToken } from '../../src/auth/mint.ts';
import { loadConfig } from '../../src/config/env.ts';
import { startProxy, type RunningProxy } from '../../src/server.ts';
import { startGitLabStandIn, type StandIn } from './gitlab-standin.ts';
import { Changes, GUARD_MS, until } from './wait.ts';

export interface AuditLine extends AuditRecord {
  time: string;
}

export interface Harness {
  standin: StandIn;
  proxy: RunningProxy;
  /** The proxy's base URL: what a vendor configures as "GitLab URL". */
  url: string;
  realToken: string;
  jwtSecret: string;
  policyDir: string;
  /** Every audit line written so far, parsed. */
  audit: AuditLine[];
  /** Raw audit text (to assert that no secret appears anywhere in it). */
  auditText: () => string;
  token: (client: string, opts?: { expiresInSeconds?: number; jti?: string; now?: number }) => Promise<string>;
  /** Notified after each audit line (for `until` in ./wait.ts). */
  auditChanges: Changes;
  /** Waits until `n` audit lines exist (the line is written when the response has ended). */
  waitForAudit: (n: number, timeoutMs?: number) => Promise<void>;
  /** The first audit line that `match`es, now or when it is written. */
  waitForAuditLine: (match: (l: AuditLine) => boolean, what: string) => Promise<AuditLine>;
  /** Stops the proxy (letting what is in flight end), then fails if a forbidden request reached
   *  the stand-in at any time (StandIn.forbid), then stops the stand-in. */
  close: () => Promise<void>;
}

export interface HarnessOptions {
  /** Policy files: name -> YAML text. */
  policies: Record<string, string>;
  relativeRoot?: string;
  env?: Record<string, string>;
}

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const realToken = `glpat-${randomBytes(15).toString('hex')}`;
  const jwtSecret = randomBytes(32).toString('base64url');
  const standin = await startGitLabStandIn({ validTokens: [realToken], ...(opts.relativeRoot ? { relativeRoot: opts.relativeRoot } : {}) });
  const policyDir = mkdtempSync(join(tmpdir(), 'gsp-policy-'));
  for (const [name, text] of Object.entries(opts.policies)) writeFileSync(join(policyDir, name), text);

  const lines: string[] = [];
  const audit: AuditLine[] = [];
  const auditChanges = new Changes();
  const sink = {
    write(chunk: string) {
      lines.push(chunk);
      for (const line of chunk.split('\n')) if (line) audit.push(JSON.parse(line) as AuditLine);
      auditChanges.notify();
    },
  };
  const config = loadConfig({
    GITLAB_URL: standin.url,
    GITLAB_TOKEN: realToken,
    PROXY_JWT_SECRET: jwtSecret,
    POLICY_DIR: policyDir,
    PORT: '0',
    HOST: '127.0.0.1',
    ...opts.env,
  });
  const proxy = await startProxy(config, { ops: pino({ level: 'silent' }), audit: auditLogTo(sink) });

  const waitForAudit = async (n: number, timeoutMs = GUARD_MS): Promise<void> => {
    await until(auditChanges, () => audit.length >= n, `${n} audit lines`, timeoutMs).catch(() => {
      throw new Error(`expected ${n} audit lines, have ${audit.length}`);
    });
  };

  return {
    standin,
    proxy,
    url: proxy.url,
    realToken,
    jwtSecret,
    policyDir,
    audit,
    auditText: () => lines.join(''),
    token: (client, o = {}) =>
      mintToken({
        client,
        audience: config.jwt.audience,
        issuer: config.jwt.issuer,
        expiresInSeconds: o.expiresInSeconds ?? 3600,
        ...(o.jti ? { jti: o.jti } : {}),
        ...(o.now !== undefined ? { now: o.now } : {}),
        key: { kind: 'secret', secret: new TextEncoder().encode(jwtSecret) },
      }),
    auditChanges,
    waitForAudit,
    waitForAuditLine: (match, what) => until(auditChanges, () => audit.find(match), what),
    close: async () => {
      await proxy.close();
      const violations = standin.takeViolations();
      await standin.close();
      rmSync(policyDir, { recursive: true, force: true });
      if (violations.length > 0) throw new Error(`forbidden requests reached the GitLab stand-in:\n${violations.join('\n')}`);
    },
  };
}

/**
 * Sends raw bytes to `url`'s host and port on one connection and reads the HTTP responses
 * back by their framing (Content-Length, chunked, or until close), never by waiting for
 * silence. Reading ends when the server closes the connection, or when `responses` complete
 * responses (default 1) have arrived and the last one does not announce `Connection: close`
 * (then the server may keep the connection open, and `closed` is false). For requests no
 * HTTP client library would send (smuggling, odd framing, raw paths).
 */
export function rawRequest(url: string, bytes: string | Buffer, opts: { responses?: number } = {}): Promise<{ text: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  const wanted = opts.responses ?? 1;
  const headFirst = /^HEAD /.test(Buffer.from(bytes).subarray(0, 5).toString('latin1'));
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let buffer = Buffer.alloc(0);
    let settled = false;
    const guard = setTimeout(() => {
      socket.destroy();
      fail(new Error(`rawRequest: no complete answer within ${GUARD_MS} ms; got ${JSON.stringify(buffer.toString('latin1'))}`));
    }, GUARD_MS);
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      socket.destroy();
      resolve({ text: buffer.toString('latin1'), closed });
    };
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      reject(err);
    };
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => {
      buffer = Buffer.concat([buffer, c]);
      const framed = completeResponses(buffer, headFirst);
      if (framed.count >= wanted && !framed.lastCloses) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (err) => (buffer.length ? finish(true) : fail(err)));
  });
}

/** How many whole responses `buf` holds, and whether the last says `Connection: close`. */
function completeResponses(buf: Buffer, headFirst: boolean): { count: number; lastCloses: boolean } {
  let at = 0;
  let count = 0;
  let lastCloses = false;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) return { count, lastCloses };
    const head = buf.subarray(at, end).toString('latin1');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
    const header = (name: string): string | undefined => new RegExp(`\r\n${name}:[ \t]*([^\r]*)`, 'i').exec(head)?.[1];
    let next = end + 4;
    const bodiless = (count === 0 && headFirst) || (status >= 100 && status < 200) || status === 204 || status === 304;
    if (!bodiless) {
      if (/chunked/i.test(header('transfer-encoding') ?? '')) {
        const after = chunkedEnd(buf, next);
        if (after < 0) return { count, lastCloses };
        next = after;
      } else if (header('content-length') !== undefined) {
        next += Number(header('content-length'));
        if (next > buf.length) return { count, lastCloses };
      } else {
        return { count, lastCloses }; // the body runs until the server closes
      }
    }
    if (status >= 200) {
      count++;
      lastCloses = /close/i.test(header('connection') ?? '');
    }
    at = next;
  }
}

/** Where a chunked body that starts at `at` ends (after its last chunk), or -1 if incomplete. */
function chunkedEnd(buf: Buffer, at: number): number {
  for (;;) {
    const line = buf.indexOf('\r\n', at);
    if (line < 0) return -1;
    const size = parseInt(buf.subarray(at, line).toString('latin1'), 16);
    if (size === 0) {
      const trailers = buf.indexOf('\r\n\r\n', line);
      return trailers < 0 ? -1 : trailers + 4;
    }
    at = line + 2 + size + 2;
    if (at > buf.length) return -1;
  }
}

/** Status codes of every HTTP response in a raw reply, in order. */
export const statuses = (raw: string): number[] => [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
