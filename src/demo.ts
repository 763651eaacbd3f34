// `npm run demo`: the proxy in front of the project's own GitLab stand-in, a demo client and
// its token, and copy-paste curl commands, so a newcomer sees it work without a GitLab.
// Everything is generated for this run and listens on loopback only.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGitLabStandIn } from '../test/support/gitlab-standin.ts';
import { createOpsLog } from './audit/audit.ts';
import { mintToken } from './auth/mint.ts';
import { loadConfig } from './config/env.ts';
import { startProxy } from './server.ts';

const port = process.env.DEMO_PORT ?? '8080';
const realToken = `glpat-demo-${randomBytes(10).toString('hex')}`;
const jwtSecret = randomBytes(32).toString('base64url');
const auditLog = join(mkdtempSync(join(tmpdir(), 'gsp-demo-')), 'audit.log');

const gitlab = await startGitLabStandIn({ validTokens: [realToken] });
const config = loadConfig({
  GITLAB_URL: gitlab.url,
  GITLAB_TOKEN: realToken,
  PROXY_JWT_SECRET: jwtSecret,
  POLICY_DIR: join(import.meta.dirname, '..', 'policies', 'examples'),
  PORT: port,
  HOST: '127.0.0.1',
  AUDIT_LOG: auditLog,
  LOG_LEVEL: 'warn',
});
const proxy = await startProxy(config, { ops: createOpsLog('warn') });
const token = await mintToken({
  client: 'demo-vendor', audience: config.jwt.audience, issuer: undefined, expiresInSeconds: 86400,
  key: { kind: 'secret', secret: config.jwt.secret! },
});

const base = proxy.url;
const show = async (title: string, method: string, path: string, body?: string): Promise<void> => {
  const headers: Record<string, string> = { 'PRIVATE-TOKEN': token, ...(body ? { 'Content-Type': 'application/json' } : {}) };
  const res = await fetch(base + path, { method, headers, ...(body ? { body } : {}) });
  const text = await res.text();
  console.log(`\n# ${title}\ncurl -s -X ${method} -H "PRIVATE-TOKEN: $TOKEN"${body ? ` -H 'Content-Type: application/json' -d '${body}'` : ''} ${base}${path}`);
  console.log(`-> ${res.status} ${text.length > 160 ? text.slice(0, 160) + '...' : text}`);
};

console.log(`gitlab-scope-proxy demo
  GitLab stand-in:  ${gitlab.url}   (holds the real token; vendors never see it)
  proxy:            ${base}          (what a vendor configures as its "GitLab URL")
  policy:           policies/examples/demo.yaml (client "demo-vendor")
  audit log:        ${auditLog}

export TOKEN=${token}`);
await show('allowed: read a project', 'GET', '/api/v4/projects/3');
await show('allowed: comment on a merge request', 'POST', '/api/v4/projects/3/merge_requests/1/notes', '{"body":"Build passed"}');
await show('denied: delete the project (not in the allowlist)', 'DELETE', '/api/v4/projects/3');
await show('denied: impersonate an admin with sudo', 'GET', '/api/v4/projects/3?sudo=root');
await proxy.audit.flush();
await new Promise((r) => setTimeout(r, 100));
console.log(`\n# the audit lines they left\ntail -n 4 ${auditLog}`);
console.log(readFileSync(auditLog, 'utf8').trim().split('\n').slice(-4).join('\n'));
console.log(`\nTry your own calls with the commands above. Ctrl-C stops the demo.`);

const stop = async (): Promise<void> => {
  await proxy.close();
  await gitlab.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
if (process.env.DEMO_EXIT === '1') await stop();
