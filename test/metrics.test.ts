// The admin listener (/metrics, /healthz, /readyz), what the metrics count, and the per-client
// settings that feed them: rate limit, concurrency limit, the client's own GitLab token.
import { randomBytes } from 'node:crypto';
import { get, type IncomingMessage } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitLabStandIn, type StandIn } from './support/gitlab-standin.ts';
import { send, startRig, waitFor, type Rig } from './support/ops.ts';

const secretsDir = mkdtempSync(join(tmpdir(), 'gsp-secrets-'));
const realToken = `glpat-${randomBytes(12).toString('hex')}`;
const ownToken = `glpat-${randomBytes(12).toString('hex')}`;
const envToken = `glpat-${randomBytes(12).toString('hex')}`;
const envName = `GSP_TEST_TOKEN_${randomBytes(4).toString('hex').toUpperCase()}`;
const ownTokenFile = join(secretsDir, 'own-token');
writeFileSync(ownTokenFile, `${ownToken}\n`);
process.env[envName] = envToken;

const POLICY = `
clients:
  packit:
    allow:
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/repository/**
  limited:
    rate_limit: 2/minute
    allow: [GET /api/v4/projects/:id]
  bursty:
    rate_limit: 20/second
    burst: 1
    allow: [GET /api/v4/projects/:id]
  own-account:
    upstream_token_file: ${ownTokenFile}
    allow: [GET /api/v4/projects/:id]
  env-account:
    upstream_token_env: ${envName}
    allow: [GET /api/v4/projects/:id]
`;

describe('admin listener and metrics', () => {
  let standin: StandIn;
  let rig: Rig;
  /** The rate limiter's clock: it moves only when a test steps it. */
  let clockMs = 1_000_000;
  beforeAll(async () => {
    standin = await startGitLabStandIn({ validTokens: [realToken, ownToken, envToken] });
    rig = await startRig({ policies: { 'clients.yaml': POLICY }, env: { GITLAB_URL: standin.url, GITLAB_TOKEN: realToken }, clock: () => clockMs });
  });
  afterAll(async () => {
    await rig.close();
    await standin.close();
  });

  it('serves /metrics, /healthz and /readyz on the admin port only', async () => {
    const metrics = await send(`${rig.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.text).toContain('# TYPE gsp_requests_total counter');
    expect(metrics.text).toContain('process_resident_memory_bytes');
    expect((await send(`${rig.adminUrl}/healthz`)).status).toBe(200);
    const ready = await send(`${rig.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ status: 'ready', checks: { audit: true, accepting: true } });
    expect(await rig.metric('gsp_gitlab_up')).toBe(1);
    expect((await send(`${rig.adminUrl}/api/v4/projects/1`)).status).toBe(404);
    expect((await send(`${rig.adminUrl}/metrics`, { method: 'POST' })).status).toBe(405);

    // The vendor-facing port has no /metrics: without a token 401, with one 403, and GitLab sees neither.
    standin.reset();
    const anonymous = await send(`${rig.url}/metrics`);
    expect(anonymous.status).toBe(401);
    const vendor = await send(`${rig.url}/metrics`, { headers: { 'PRIVATE-TOKEN': await rig.token('packit') } });
    expect(vendor.status).toBe(403);
    for (const r of [anonymous, vendor]) expect(r.text).not.toContain('gsp_');
    expect(standin.requests).toHaveLength(0);
    // Denials are counted by their reason code (the dashboard's "denials by reason").
    expect(await rig.metric('gsp_denials_total', { client: 'packit', decision: 'deny', reason: 'not-api' })).toBe(1);
    expect(await rig.metric('gsp_denials_total', { client: '(none)', decision: 'deny', reason: 'no-token' })).toBe(1);
  });

  it('counts requests by client, decision and status, times them, and counts JWT failures by reason', async () => {
    const jwt = await rig.token('packit');
    const before = {
      ok: (await rig.metric('gsp_requests_total', { client: 'packit', decision: 'allow', status: '200' })) ?? 0,
      denied: (await rig.metric('gsp_requests_total', { client: 'packit', decision: 'deny', status: '403' })) ?? 0,
      timed: (await rig.metric('gsp_request_duration_seconds_count', { client: 'packit' })) ?? 0,
      upstream: (await rig.metric('gsp_upstream_duration_seconds_count', { client: 'packit' })) ?? 0,
      anonymous: (await rig.metric('gsp_requests_total', { client: '(none)', decision: 'deny', status: '401' })) ?? 0,
      noToken: (await rig.metric('gsp_jwt_failures_total', { reason: 'no-token' })) ?? 0,
    };
    for (let i = 0; i < 3; i++) expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })).status).toBe(200);
    expect((await send(`${rig.url}/api/v4/user`, { headers: { 'PRIVATE-TOKEN': jwt } })).status).toBe(403);
    expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': 'not-a-jwt' } })).status).toBe(401);
    expect((await send(`${rig.url}/api/v4/projects/1`)).status).toBe(401);
    const other = await rig.token('packit', { secret: randomBytes(32).toString('hex') });
    expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': other } })).status).toBe(401);

    await waitFor(async () => (await rig.metric('gsp_requests_total', { client: '(none)', decision: 'deny', status: '401' })) === before.anonymous + 3, 'the 401s to be counted');
    expect(await rig.metric('gsp_requests_total', { client: 'packit', decision: 'allow', status: '200' })).toBe(before.ok + 3);
    expect(await rig.metric('gsp_requests_total', { client: 'packit', decision: 'deny', status: '403' })).toBe(before.denied + 1);
    expect(await rig.metric('gsp_request_duration_seconds_count', { client: 'packit' })).toBe(before.timed + 4);
    // GitLab's part is timed only for requests that reached it.
    expect(await rig.metric('gsp_upstream_duration_seconds_count', { client: 'packit' })).toBe(before.upstream + 3);
    expect(await rig.metric('gsp_jwt_failures_total', { reason: 'not-a-jwt' })).toBe(1);
    expect(await rig.metric('gsp_jwt_failures_total', { reason: 'no-token' })).toBe(before.noToken + 1);
    expect(await rig.metric('gsp_jwt_failures_total', { reason: 'bad-signature' })).toBe(1);
    expect(await rig.metric('gsp_policy_info', { checksum: rig.proxy.policy().checksum })).toBe(1);
    expect(await rig.metric('gsp_policy_clients')).toBe(5);
    expect(await rig.metric('gsp_audit_writable')).toBe(1);
    expect(await rig.metric('gsp_policy_last_reload_success_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('refuses a client over its rate limit with 429, Retry-After and GitLab JSON; GitLab never sees it', async () => {
    standin.reset();
    const jwt = await rig.token('limited');
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof send>> | undefined;
    for (let i = 0; i < 4; i++) {
      const r = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } });
      statuses.push(r.status);
      if (r.status === 429) refused = r;
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
    expect(JSON.parse(refused!.text)).toEqual({ message: '429 Too Many Requests' });
    // 2/minute: the next token comes in 30 s (the clock stood still).
    expect(refused!.headers['retry-after']).toBe('30');
    expect(standin.requests).toHaveLength(2);
    await rig.until(() => rig.auditLines().filter((l) => l.client === 'limited').length === 4, 'four audit lines');
    expect(rig.auditLines().filter((l) => l.client === 'limited').map((l) => [l.status, l.reason]))
      .toEqual([[200, null], [200, null], [429, 'rate-limited'], [429, 'rate-limited']]);
    expect(await rig.metric('gsp_limit_refusals_total', { client: 'limited', reason: 'rate-limited' })).toBe(2);
    // Other clients are not affected.
    expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await rig.token('packit') } })).status).toBe(200);
  });

  it('refills the bucket at the configured rate, up to `burst`', async () => {
    const jwt = await rig.token('bursty');
    const first = await Promise.all([0, 1, 2].map(() => send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })));
    expect(first.map((r) => r.status).sort()).toEqual([200, 429, 429]);
    // 20/second: one token every 50 ms, and never more than `burst` (1) saved up.
    clockMs += 49;
    expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })).status).toBe(429);
    clockMs += 1;
    expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })).status).toBe(200);
    clockMs += 10_000;
    const later = await Promise.all([0, 1].map(() => send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })));
    expect(later.map((r) => r.status).sort()).toEqual([200, 429]);
  });

  it("forwards with the client's own GitLab token (file or environment), and never shows it", async () => {
    standin.reset();
    for (const client of ['own-account', 'env-account', 'packit']) {
      expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await rig.token(client) } })).status).toBe(200);
    }
    expect(standin.requests.map((r) => r.headers['private-token'])).toEqual([ownToken, envToken, realToken]);
    await rig.proxy.shutdown(1000).catch(() => undefined);
    const everything = JSON.stringify(rig.auditLines()) + JSON.stringify(rig.opsLines) + (await send(`${rig.adminUrl}/metrics`).then((r) => r.text, () => ''));
    for (const secret of [realToken, ownToken, envToken]) expect(everything).not.toContain(secret);
    expect(JSON.stringify([...rig.proxy.policy().clients.values()])).not.toContain(ownToken);
  });
});

describe('concurrency limit', () => {
  it('refuses a request over MAX_CONCURRENT_PER_CLIENT with 429 too-many-concurrent, and frees the slot', async () => {
    const standin = await startGitLabStandIn({ validTokens: [realToken] });
    const rig = await startRig({ policies: { 'clients.yaml': POLICY }, env: { GITLAB_URL: standin.url, GITLAB_TOKEN: realToken, MAX_CONCURRENT_PER_CLIENT: '1' } });
    try {
      const jwt = await rig.token('packit');
      // A download holds the one slot: 24 MiB is more than the socket buffers on the way hold,
      // so it cannot end until this test reads it, however fast or slow the machine is.
      const bytes = 384 * 65_536;
      const slow = await new Promise<IncomingMessage>((resolve, reject) => {
        get(`${rig.url}/api/v4/projects/1/repository/archive?bytes=${bytes}`, { headers: { 'PRIVATE-TOKEN': jwt }, agent: false }, resolve).on('error', reject);
      });
      expect(slow.statusCode).toBe(200);
      const second = await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } });
      expect(second.status).toBe(429);
      expect(second.headers['retry-after']).toBe('1');
      expect(JSON.parse(second.text)).toEqual({ message: '429 Too Many Requests' });
      // Another client has its own slot.
      expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await rig.token('limited') } })).status).toBe(200);
      expect(await rig.metric('gsp_requests_in_flight', { client: 'packit' })).toBe(1);
      let size = 0;
      for await (const chunk of slow) size += (chunk as Buffer).length;
      expect(size).toBe(bytes);
      // The slot is given back when the proxy has finished the response: its audit line says so.
      await rig.until(() => rig.auditLines().some((l) => String(l.path).endsWith('/repository/archive')), 'the download to be audited');
      await waitFor(async () => ((await rig.metric('gsp_requests_in_flight', { client: 'packit' })) ?? 0) === 0, 'the slot to be free');
      expect((await send(`${rig.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })).status).toBe(200);
      expect(rig.auditLines().filter((l) => l.reason === 'too-many-concurrent')).toHaveLength(1);
      expect(await rig.metric('gsp_limit_refusals_total', { client: 'packit', reason: 'too-many-concurrent' })).toBe(1);
      // The refused request never reached GitLab: only the other client's and the last one did.
      expect(standin.requests.filter((r) => r.path === '/api/v4/projects/1')).toHaveLength(2);
    } finally {
      await rig.close();
      await standin.close();
    }
  });
});
