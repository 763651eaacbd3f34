// TLS: HTTPS on the vendor-facing listener (TLS_CERT_FILE + TLS_KEY_FILE, reloaded when the
// files change), and a GitLab whose certificate comes from a private CA (GITLAB_CA_FILE).
// Certificates are made for the test with the openssl CLI.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/env.ts';
import { startProxy } from '../src/server.ts';
import { startGitLabStandIn, type StandIn } from './support/gitlab-standin.ts';
import { send, startRig } from './support/ops.ts';

const POLICY = 'clients:\n  packit:\n    allow:\n      - GET /api/v4/projects/:id\n';
const dir = mkdtempSync(join(tmpdir(), 'gsp-tls-'));
const path = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

/** A CA and server certificates it signed for 127.0.0.1 (EC P-256, valid for a day). */
function makeCertificates(): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=gsp test CA');
  writeFileSync(path('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const name of ['server', 'server2']) {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1');
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', `${name}.pem`, '-days', '1', '-extfile', 'ext.cnf');
  }
  // A certificate its own issuer: trusted by nobody.
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'self.key', '-out', 'self.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1');
}

/** The serial number of the certificate a TLS server presents to a new connection. */
function servedSerial(url: string, ca: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: Number(port), ca, servername: undefined }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.destroy();
    });
    s.on('error', reject);
  });
}

const serialOf = (pemFile: string): string => openssl('x509', '-in', pemFile, '-noout', '-serial').toString().trim().replace(/^serial=/, '').toUpperCase();

beforeAll(() => makeCertificates());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('HTTPS listener', () => {
  const token = `glpat-${randomBytes(12).toString('hex')}`;
  let standin: StandIn;
  beforeAll(async () => {
    standin = await startGitLabStandIn({ validTokens: [token] });
  });
  afterAll(() => standin.close());

  it('serves vendors over HTTPS and picks up a renewed certificate without a restart', async () => {
    const cert = path('live.pem');
    const key = path('live.key');
    writeFileSync(cert, readFileSync(path('server.pem')));
    writeFileSync(key, readFileSync(path('server.key')));
    const rig = await startRig({
      policies: { 'a.yaml': POLICY },
      env: { GITLAB_URL: standin.url, GITLAB_TOKEN: token, TLS_CERT_FILE: cert, TLS_KEY_FILE: key },
      watch: true,
    });
    try {
      const ca = readFileSync(path('ca.pem'), 'utf8');
      expect(rig.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await rig.token('packit') }, ca });
      expect(res.status).toBe(200);
      expect(standin.requests.at(-1)!.headers['private-token']).toBe(token);
      // Plain HTTP to the HTTPS port gets no answer from the API.
      await expect(send(rig.url.replace('https:', 'http:') + '/api/v4/projects/1')).rejects.toThrow();
      // An untrusted client sees an unknown issuer.
      await expect(send(`${rig.url}/healthz`)).rejects.toThrow(/self[- ]signed|unable to verify|issuer/i);
      expect(await servedSerial(rig.url, ca)).toBe(serialOf(path('server.pem')));

      // cert-manager renews: both files are rewritten; the next connection gets the new one.
      writeFileSync(key, readFileSync(path('server2.key')));
      writeFileSync(cert, readFileSync(path('server2.pem')));
      // The reload line is written once the new certificate is in place.
      const reload = await rig.until(() => rig.auditLines().find((l) => l.client === 'system' && l.decision === 'reload'), 'the certificate reload');
      expect(reload).toMatchObject({ decision: 'reload', changed: ['tls-certificate'] });
      expect(await servedSerial(rig.url, ca)).toBe(serialOf(path('server2.pem')));
      expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await rig.token('packit') }, ca })).status).toBe(200);
    } finally {
      await rig.close();
    }
  });

  it('refuses to start with half a TLS setting or a key that does not match the certificate', async () => {
    const base = { GITLAB_URL: standin.url, GITLAB_TOKEN: token, PROXY_JWT_SECRET: randomBytes(32).toString('hex'), POLICY_DIR: dir, PORT: '0', HOST: '127.0.0.1' };
    expect(() => loadConfig({ ...base, TLS_CERT_FILE: path('server.pem') })).toThrow(/TLS_CERT_FILE and TLS_KEY_FILE go together/);
    const mismatched = loadConfig({ ...base, TLS_CERT_FILE: path('server.pem'), TLS_KEY_FILE: path('server2.key') });
    await expect(startProxy(mismatched, { audit: { write: () => undefined, flush: async () => undefined } })).rejects.toThrow(ConfigError);
    expect(() => loadConfig({ ...base, GITLAB_CA_FILE: path('ca.pem') })).toThrow(/GITLAB_CA_FILE is set but GITLAB_URL is not https/);
    expect(() => loadConfig({ ...base, GITLAB_URL: 'https://gitlab.example.test', GITLAB_CA_FILE: path('ext.cnf') })).toThrow(/GITLAB_CA_FILE: .* holds no PEM certificate/);
  });
});

describe('GitLab with a private CA', () => {
  const token = `glpat-${randomBytes(12).toString('hex')}`;
  let gitlab: Server;
  let url: string;
  const seen: (string | undefined)[] = [];
  beforeAll(async () => {
    gitlab = createServer({ cert: readFileSync(path('server.pem')), key: readFileSync(path('server.key')) }, (req, res) => {
      seen.push(req.headers['private-token'] as string | undefined);
      const ok = req.headers['private-token'] === token;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? '{"id":1}' : '{"message":"401 Unauthorized"}');
    });
    await new Promise<void>((r) => gitlab.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(gitlab.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => {
    gitlab.close(() => r());
    gitlab.closeAllConnections();
  }));

  it('trusts GitLab signed by GITLAB_CA_FILE', async () => {
    const rig = await startRig({ policies: { 'a.yaml': POLICY }, env: { GITLAB_URL: url, GITLAB_TOKEN: token, GITLAB_CA_FILE: path('ca.pem') } });
    try {
      const res = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await rig.token('packit') } });
      expect(res.status).toBe(200);
      expect(res.text).toBe('{"id":1}');
      expect(seen.at(-1)).toBe(token);
      expect((await send(`${rig.adminUrl}/readyz`)).status).toBe(200);
    } finally {
      await rig.close();
    }
  });

  it('refuses a GitLab certificate the configured CA did not sign (502), and one no CA vouches for', async () => {
    for (const env of [{}, { GITLAB_CA_FILE: path('self.pem') }] as Record<string, string>[]) {
      const before = seen.length;
      const rig = await startRig({ policies: { 'a.yaml': POLICY }, env: { GITLAB_URL: url, GITLAB_TOKEN: token, ...env } });
      try {
        const res = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await rig.token('packit') } });
        expect(res.status).toBe(502);
        expect(await rig.metric('gsp_upstream_errors_total', { kind: 'tls' })).toBe(1);
        // The token never went to a GitLab the proxy could not verify.
        expect(seen.length).toBe(before);
      } finally {
        await rig.close();
      }
    }
  });
});
