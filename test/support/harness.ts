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
  /** Waits until `n` audit lines exist (the line is written when the response has ended). */
  waitForAudit: (n: number, timeoutMs?: number) => Promise<void>;
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
  const sink = {
    write(chunk: string) {
      lines.push(chunk);
      for (const line of chunk.split('\n')) if (line) audit.push(JSON.parse(line) as AuditLine);
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

  const waitForAudit = async (n: number, timeoutMs = 2000): Promise<void> => {
    const end = Date.now() + timeoutMs;
    while (audit.length < n) {
      if (Date.now() > end) throw new Error(`expected ${n} audit lines, have ${audit.length}`);
      await new Promise((r) => setTimeout(r, 5));
    }
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
    waitForAudit,
    close: async () => {
      await proxy.close();
      await standin.close();
      rmSync(policyDir, { recursive: true, force: true });
    },
  };
}

/**
 * Sends raw bytes to `url`'s host and port and resolves with everything the server sent back
 * until it closed the connection or `idleMs` passed without data. For requests no HTTP client
 * library would send (smuggling, odd framing, raw paths).
 */
export function rawRequest(url: string, bytes: string | Buffer, idleMs = 300): Promise<{ text: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), idleMs);
    };
    socket.on('connect', () => {
      socket.write(bytes);
      arm();
    });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      arm();
    });
    socket.on('end', () => finish(true));
    socket.on('error', (err) => (chunks.length ? finish(true) : reject(err)));
  });
}

/** Status codes of every HTTP response in a raw reply, in order. */
export const statuses = (raw: string): number[] => [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
