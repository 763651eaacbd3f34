// Two proxies sharing one real redis-server (REDIS_URL), each in front of its GitLab stand-in:
// a client's rate limit and MAX_CONCURRENT_PER_CLIENT hold across both, as one replica would
// enforce them. With Redis stopped or hung, each replica counts alone (and says so), and limits
// are shared again once Redis answers.
import { get, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type AuditLine, type Harness } from '../support/harness.ts';
import { parseMetric, send } from '../support/ops.ts';
import { startRedis, type RedisServer } from '../support/redis-server.ts';

// Rates are per hour: no token comes back while the test runs, however slow the machine.
const POLICY = `
clients:
  limited:
    rate_limit: 4/hour
    allow: [GET /api/v4/projects/:id]
  packit:
    allow:
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/repository/**
  other:
    allow: [GET /api/v4/projects/:id]
  cut-off:
    rate_limit: 2/hour
    allow: [GET /api/v4/projects/:id]
  rejoined:
    rate_limit: 1/hour
    allow: [GET /api/v4/projects/:id]
  stuck:
    rate_limit: 1/hour
    allow: [GET /api/v4/projects/:id]
`;

let redis: RedisServer;
let a: Harness;
let b: Harness;

beforeAll(async () => {
  redis = await startRedis();
  const env = { REDIS_URL: redis.url, MAX_CONCURRENT_PER_CLIENT: '2' };
  a = await startHarness({ policies: { 'clients.yaml': POLICY }, env });
  b = await startHarness({ policies: { 'clients.yaml': POLICY }, env });
});
afterAll(async () => {
  redis?.resume();
  await a?.close();
  await b?.close();
  await redis?.close();
});

const project = async (h: Harness, client: string) => send(`${h.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': await h.token(client) } });
/** Requests both stand-ins received for project 1 (since they were last reset). */
const gitlabSaw = (): number => a.standin.requests.concat(b.standin.requests).filter((r) => r.path === '/api/v4/projects/1').length;
const linesOf = (client: string): AuditLine[] => [...a.audit, ...b.audit].filter((l) => l.client === client);
const sharedMetric = async (h: Harness): Promise<number | undefined> => parseMetric(await h.proxy.metrics.text(), 'gsp_limits_shared', {});
const systemLine = (h: Harness, decision: string, after: number) =>
  h.waitForAuditLine((l) => l.client === 'system' && (l.decision as string) === decision && h.audit.indexOf(l) >= after, `a ${decision} line`);

/** A download that holds its slot until the test reads it: 24 MiB is more than the socket
 *  buffers on the way hold, so it cannot end before, however fast or slow the machine is. */
const DOWNLOAD = 384 * 65_536;
async function holdDownload(h: Harness, client: string): Promise<IncomingMessage> {
  const token = await h.token(client);
  return new Promise((resolve, reject) => {
    get(`${h.url}/api/v4/projects/1/repository/archive?bytes=${DOWNLOAD}`, { headers: { 'PRIVATE-TOKEN': token }, agent: false }, resolve).on('error', reject);
  });
}
async function finish(h: Harness, res: IncomingMessage): Promise<void> {
  let size = 0;
  for await (const chunk of res) size += (chunk as Buffer).length;
  expect(size).toBe(DOWNLOAD);
  // The slot is given back when the proxy has finished the response: its audit line says so.
  await h.waitForAuditLine((l) => l.path.endsWith('/repository/archive') && l.status === 200, 'the download to be audited');
}

it('admits a client at its rate_limit across both replicas together: exactly N reach GitLab', async () => {
  for (const h of [a, b]) h.standin.reset();
  const statuses: number[] = [];
  const refusals: Array<{ retryAfter: string | string[] | undefined; body: string }> = [];
  for (let i = 0; i < 8; i++) {
    const r = await project(i % 2 ? b : a, 'limited');
    statuses.push(r.status);
    if (r.status === 429) refusals.push({ retryAfter: r.headers['retry-after'], body: r.text });
  }
  expect(statuses).toEqual([200, 200, 200, 200, 429, 429, 429, 429]);
  expect(gitlabSaw()).toBe(4);
  for (const r of refusals) {
    expect(JSON.parse(r.body)).toEqual({ message: '429 Too Many Requests' });
    // 4/hour: the next request passes 15 minutes after the first.
    expect(Number(r.retryAfter)).toBeGreaterThan(0);
    expect(Number(r.retryAfter)).toBeLessThanOrEqual(900);
  }
  await a.waitForAudit(4);
  await b.waitForAudit(4);
  expect(linesOf('limited').filter((l) => l.reason === 'rate-limited').map((l) => [l.status, l.detail])).toEqual([[429, undefined], [429, undefined], [429, undefined], [429, undefined]]);
  expect([await sharedMetric(a), await sharedMetric(b)]).toEqual([1, 1]);
});

it('holds MAX_CONCURRENT_PER_CLIENT across both replicas, and gives the slots back when the responses end', async () => {
  for (const h of [a, b]) h.standin.reset();
  const first = await holdDownload(a, 'packit');
  const second = await holdDownload(b, 'packit');
  expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
  // Two in flight, one on each replica: both refuse a third.
  for (const h of [a, b]) {
    const r = await project(h, 'packit');
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('1');
    expect(JSON.parse(r.text)).toEqual({ message: '429 Too Many Requests' });
  }
  // Another client has its own slots.
  expect((await project(a, 'other')).status).toBe(200);

  await finish(a, first);
  expect((await project(a, 'packit')).status).toBe(200);
  await finish(b, second);
  expect((await project(b, 'packit')).status).toBe(200);

  expect(linesOf('packit').filter((l) => l.reason === 'too-many-concurrent').map((l) => l.status)).toEqual([429, 429]);
  // The refused requests never reached GitLab.
  expect(a.standin.requests.map((r) => r.path)).toEqual(['/api/v4/projects/1/repository/archive', '/api/v4/projects/1', '/api/v4/projects/1']);
  expect(b.standin.requests.map((r) => r.path)).toEqual(['/api/v4/projects/1/repository/archive', '/api/v4/projects/1']);
});

it('counts per replica while Redis is stopped, says so, and shares limits again once Redis is back', async () => {
  for (const h of [a, b]) h.standin.reset();
  const [fromA, fromB] = [a.audit.length, b.audit.length];
  await redis.close();
  // Each replica admits the client's limit on its own: twice the limit in all, the bound that
  // applies without REDIS_URL. Its refusals say which count refused them.
  for (const h of [a, b]) expect([(await project(h, 'cut-off')).status, (await project(h, 'cut-off')).status, (await project(h, 'cut-off')).status]).toEqual([200, 200, 429]);
  expect(gitlabSaw()).toBe(4);
  for (const [h, from] of [[a, fromA], [b, fromB]] as const) {
    expect(await systemLine(h, 'limits-per-replica', from)).toMatchObject({ reason: 'redis-unreachable' });
    expect(await sharedMetric(h)).toBe(0);
    const refused = await h.waitForAuditLine((l) => l.client === 'cut-off' && l.status === 429, 'the refusal');
    expect(refused).toMatchObject({ reason: 'rate-limited', detail: 'per-replica' });
  }

  // Redis restarts (empty): each replica finds it again, and one count holds for both again.
  redis = await startRedis({ port: redis.port });
  for (const [h, from] of [[a, fromA], [b, fromB]] as const) expect(await systemLine(h, 'limits-shared', from)).toMatchObject({ reason: 'redis-back' });
  expect([await sharedMetric(a), await sharedMetric(b)]).toEqual([1, 1]);
  expect((await project(a, 'rejoined')).status).toBe(200);
  expect((await project(b, 'rejoined')).status).toBe(429);
});

it('does not let a hung Redis hold requests: past the command timeout, each replica counts alone', async () => {
  const from = a.audit.length;
  redis.pause();
  try {
    expect((await project(a, 'stuck')).status).toBe(200);
    expect(await systemLine(a, 'limits-per-replica', from)).toMatchObject({ reason: 'redis-timeout' });
    // From now on without waiting for Redis: this replica's own count refuses the second.
    const second = await project(a, 'stuck');
    expect(second.status).toBe(429);
  } finally {
    redis.resume();
  }
  expect(await systemLine(a, 'limits-shared', from)).toMatchObject({ reason: 'redis-back' });
});
