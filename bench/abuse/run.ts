// npm run soak -- --abuse: the proxy, run as the image runs it, under vendor traffic and
// abuse beside it (bench/README.md, "Under abuse"). Loopback only; bounded in sockets and time.
//
//   warm-up   normal traffic only                           (10% of SOAK_MINUTES)
//   quiet     normal traffic; p99 and resident memory       (20%)
//   abuse     normal traffic + ABUSE_SOCKETS slow connections + request abuse (40%)
//   recovery  normal traffic; abusive connections left for the proxy to close (30%)
import { fork, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mintToken } from '../../src/auth/mint.ts';
import { startGitLabStandIn } from '../../test/support/gitlab-standin.ts';
import { imageAllocator } from './allocator.ts';
import { ceilingBytes, PER_CONNECTION_BYTES } from './ceiling.ts';
import { NormalTraffic, percentile } from './normal.ts';
import { openFilesLimit, procStatusBytes } from './proc.ts';
import { envNumber } from '../lib/env.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MiB = 1024 * 1024;
const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const MINUTES = envNumber('SOAK_MINUTES', 10, 0.5, 120);
const RATE = envNumber('SOAK_RATE', 200, 1, 2000);
const ABUSE_SOCKETS = envNumber('ABUSE_SOCKETS', 3500, 0, 8000);
const DURATION_MS = MINUTES * 60_000;
const PHASES = [['warm-up', 0.1], ['quiet', 0.2], ['abuse', 0.4], ['recovery', 0.3]] as const;
// The image's settings, except the two client timeouts, scaled to the run so that slow
// connections cycle several times during the abuse phase and are all closed in recovery.
const MAX_CONNECTIONS = 4096;
const MAX_BODY_BYTES = 10 * MiB;
const MAX_BUFFERED_BODY_BYTES = 64 * MiB;
const HEADERS_TIMEOUT_MS = Math.round(Math.min(30_000, Math.max(2000, DURATION_MS * 0.05)));
const REQUEST_TIMEOUT_MS = 2 * HEADERS_TIMEOUT_MS;
const SAMPLE_MS = 2000;

const policy = `clients:
  soak:
    allow: [GET /api/v4/projects, GET /api/v4/projects/:id, GET /api/v4/projects/:id/repository/archive, POST /api/v4/projects/:id/statuses/:sha]
  abuser:
    allow: [POST /api/v4/projects/:id/statuses/:sha]
  uploader:
    allow: [POST /api/v4/projects/:id/statuses/:sha]
  burster:
    rate_limit: 10/second
    burst: 20
    allow: [GET /api/v4/projects/:id]
`;

export async function runAbuseSoak(): Promise<number> {
  const files = openFilesLimit();
  if (files < 2 * ABUSE_SOCKETS + 1024) {
    console.error(`soak --abuse: the open-files limit (${files}) is below ${2 * ABUSE_SOCKETS + 1024}; raise it (ulimit -n 16384) or lower ABUSE_SOCKETS`);
    return 2;
  }
  // The compiled JavaScript, as `npm start` and the image run it (tsconfig.build.json).
  const built = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('compiling src/ to dist/ failed');

  const dir = mkdtempSync(join(tmpdir(), 'gsp-abuse-'));
  const policyDir = join(dir, 'policies');
  const auditFile = join(dir, 'audit', 'audit.log');
  mkdirSync(policyDir, { recursive: true });
  writeFileSync(join(policyDir, 'soak.yaml'), policy);
  const gitlabToken = `glpat-${randomBytes(12).toString('hex')}`;
  const jwtSecret = randomBytes(32).toString('hex');
  writeFileSync(join(dir, 'gitlab_token'), gitlabToken);
  writeFileSync(join(dir, 'jwt_secret'), jwtSecret);
  const standin = await startGitLabStandIn({ validTokens: [gitlabToken] });
  const startFlags = /exec node ((?:--\S+ )*)dist\/cli\.js/.exec((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start)?.[1] ?? '';
  const allocator = imageAllocator(join(ROOT, 'Dockerfile'));
  const child = spawn(process.execPath, [...startFlags.split(' ').filter(Boolean), join(ROOT, 'dist', 'cli.js'), 'serve'], {
    env: {
      PATH: process.env.PATH ?? '', NODE_ENV: 'production', GITLAB_URL: standin.url,
      GITLAB_TOKEN_FILE: join(dir, 'gitlab_token'), PROXY_JWT_SECRET_FILE: join(dir, 'jwt_secret'), POLICY_DIR: policyDir,
      PORT: '0', HOST: '127.0.0.1', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1', AUDIT_LOG: auditFile, LOG_LEVEL: 'info',
      MAX_CONNECTIONS: String(MAX_CONNECTIONS), MAX_BODY_BYTES: String(MAX_BODY_BYTES), MAX_BUFFERED_BODY_BYTES: String(MAX_BUFFERED_BODY_BYTES),
      CLIENT_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), CLIENT_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      // An operator's runtime settings, passed on so a run can try them (NODE_OPTIONS, LD_PRELOAD, MALLOC_*).
      ...allocator.env,
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k === 'NODE_OPTIONS' || k === 'LD_PRELOAD' || k.startsWith('MALLOC_'))),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-200_000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ports = await new Promise<{ port: number; admin: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${stderr}`)), 15_000);
    child.stderr.on('data', () => {
      const m = /"port":(\d+).*?"adminPort":(\d+)/.exec(stderr);
      if (!m) return;
      clearTimeout(timer);
      resolve({ port: Number(m[1]), admin: Number(m[2]) });
    });
    void exited.then(() => reject(new Error(`proxy exited: ${stderr}`)));
  });
  const key = { kind: 'secret' as const, secret: new TextEncoder().encode(jwtSecret) };
  const token = (client: string): Promise<string> => mintToken({ client, audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 86_400, key });
  const normal = new NormalTraffic(`http://127.0.0.1:${ports.port}`, await token('soak'));

  const attacker = fork(join(ROOT, 'bench/abuse/attacker-child.ts'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T>(m: object, want: string): Promise<T> => new Promise((resolve) => {
    const on = (r: Record<string, unknown>): void => {
      if (!(want in r)) return;
      attacker.off('message', on);
      resolve(r as T);
    };
    attacker.on('message', on);
    attacker.send(m);
  });
  const tokens = { abuser: await token('abuser'), burster: await token('burster'), uploader: await token('uploader') };

  const metricsText = (): Promise<string> => new Promise((resolve, reject) => {
    request(`http://127.0.0.1:${ports.admin}/metrics`, { agent: false }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString()));
      res.on('end', () => resolve(t));
    }).on('error', reject).end();
  });

  console.log(`soak --abuse: ${MINUTES} min at ${RATE} req/s, ${ABUSE_SOCKETS} abusive connections held in the abuse phase; `
    + `node ${startFlags} dist/cli.js serve; MAX_CONNECTIONS ${MAX_CONNECTIONS}, headers/request timeouts ${HEADERS_TIMEOUT_MS}/${REQUEST_TIMEOUT_MS} ms`);
  console.log(`soak --abuse: allocator: ${allocator.description}`);
  const samples: { atS: number; phase: string; rss: number }[] = [];
  // V8's heap and the memory its objects hold outside it, to tell them from the rest of RSS.
  const heapFigures = async (): Promise<string> => {
    const t = await metricsText();
    const one = (name: string): number => Number(t.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
    return `heap total ${mib(one('nodejs_heap_size_total_bytes'))}, used ${mib(one('nodejs_heap_size_used_bytes'))}, external ${mib(one('nodejs_external_memory_bytes'))}`;
  };
  const heap: string[] = [];
  const bounds: Record<string, number> = {};
  let at = 0;
  for (const [name, share] of PHASES) bounds[name] = (at += share * DURATION_MS);
  const started = performance.now();
  let phase = 'warm-up';
  let nextSample = 0;
  let allClosedAtS: number | null = null;
  let maxOpen = 0;
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= DURATION_MS) break;
    const now = PHASES.find(([name]) => elapsed < bounds[name]!)![0];
    if (now !== phase) {
      heap.push(`${phase} end: ${await heapFigures()}`);
      phase = now;
      normal.phase = now;
      if (now === 'abuse') await ask({ start: { port: ports.port, tokens, maxBodyBytes: MAX_BODY_BYTES } }, 'started').then(() => attacker.send({ hold: ABUSE_SOCKETS }));
      if (now === 'recovery') attacker.send({ stopNew: true });
      console.log(`soak --abuse: ${(elapsed / 1000).toFixed(0)} s: ${now}`);
    }
    normal.catchUp(Math.floor((elapsed / 1000) * RATE) - normal.sent);
    if (elapsed >= nextSample) {
      nextSample += SAMPLE_MS;
      const rss = procStatusBytes(child.pid!, 'VmRSS');
      samples.push({ atS: Math.round(elapsed / 1000), phase, rss });
      if (phase === 'abuse' || phase === 'recovery') {
        const s = (await ask<{ stats: { connections: { open: number } } }>({ stats: true }, 'stats')).stats;
        if (phase === 'abuse') maxOpen = Math.max(maxOpen, s.connections.open);
        if (phase === 'recovery' && s.connections.open === 0 && allClosedAtS === null) allClosedAtS = Math.round(elapsed / 1000);
        if (samples.length % 5 === 0) console.log(`soak --abuse: ${Math.round(elapsed / 1000)} s ${phase} rss ${mib(rss)} abusive open ${s.connections.open} normal sent ${normal.sent} failed ${normal.failed}`);
      } else if (samples.length % 5 === 0) console.log(`soak --abuse: ${Math.round(elapsed / 1000)} s ${phase} rss ${mib(rss)} normal sent ${normal.sent} failed ${normal.failed}`);
    }
    standin.reset();
    await sleep(50);
  }
  const drainEnd = performance.now() + 15_000;
  while (normal.inFlight > 0 && performance.now() < drainEnd) await sleep(20);
  const hwm = procStatusBytes(child.pid!, 'VmHWM');
  heap.push(`recovery end: ${await heapFigures()}`);
  const final = await ask<{ stats: AttackStats; leftOpen: number }>({ end: true }, 'leftOpen');
  const metrics = await metricsText();
  normal.close();
  child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(40_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') child.kill('SIGKILL');
  await standin.close();

  const lines = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { client: string | null; reason: string | null; decision: string; dropped?: number });
  const requestLines = lines.filter((l) => l.client !== 'system');
  const normalLines = requestLines.filter((l) => l.client === 'soak').length;
  const abusiveLines = requestLines.length - normalLines;
  const sum = (name: string): number => metrics.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
  const counted = sum('gsp_requests_total{');
  const dropped = sum('gsp_connections_dropped_total');
  const byReason = new Map<string, number>();
  for (const l of requestLines) if (l.client !== 'soak') byReason.set(l.reason ?? 'null', (byReason.get(l.reason ?? 'null') ?? 0) + 1);
  const c = final.stats.connections;
  const r = final.stats.requests;
  const abusiveAnswers = c.responses + Object.values(r.byStatus).reduce((a, b) => a + b, 0);
  const closedByProxy = Object.values(c.closedBy).reduce((a, b) => a + b, 0);

  const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const rssQuiet = median(samples.filter((s) => s.phase === 'quiet').map((s) => s.rss));
  const rssAbusePeak = Math.max(...samples.filter((s) => s.phase === 'abuse').map((s) => s.rss));
  const rssAfter = median(samples.slice(-5).map((s) => s.rss));
  const p99 = (name: string): number => percentile(normal.latencies.get(name) ?? [], 99);
  const p99Quiet = p99('quiet');
  const p99Abuse = p99('abuse');
  const ceiling = ceilingBytes(MAX_CONNECTIONS, MAX_BUFFERED_BODY_BYTES);
  // What each abusive connection open at the peak cost, bodies being read included: the
  // allowance the ceiling makes for each connection must cover it.
  const perConnection = (rssAbusePeak - rssQuiet) / Math.max(1, maxOpen);
  const checks: [string, boolean][] = [
    [`resident memory peak (VmHWM ${mib(hwm)}) under the ceiling ${mib(ceiling)}`, hwm <= ceiling],
    [`per abusive connection at the peak ${(perConnection / 1024).toFixed(1)} KiB <= the ceiling's ${PER_CONNECTION_BYTES / 1024} KiB`, perConnection <= PER_CONNECTION_BYTES],
    [`resident memory after abuse (${mib(rssAfter)}) within 10% of the quiet phase (${mib(rssQuiet)})`, rssAfter <= rssQuiet * 1.1],
    [`normal p99 during abuse (${p99Abuse.toFixed(2)} ms) within 2x of quiet (${p99Quiet.toFixed(2)} ms)`, p99Abuse <= 2 * p99Quiet],
    [`no normal request failed (${normal.failed} of ${normal.sent})`, normal.failed === 0 && normal.done === normal.sent],
    [`one audit line per normal request (${normalLines} lines for ${normal.sent})`, normalLines === normal.sent],
    [`every request the proxy counted is audited (${requestLines.length} lines, ${counted} counted)`, requestLines.length === counted],
    [`every abusive answer received is audited (${abusiveLines} lines >= ${abusiveAnswers} answers)`, abusiveLines >= abusiveAnswers],
    [`every abusive connection closed by the proxy (${closedByProxy} of ${c.opened}; left open ${final.leftOpen})`, final.leftOpen === 0 && closedByProxy === c.opened],
    [`longest abusive connection ${(c.longestMs / 1000).toFixed(1)} s <= request timeout + 2 s`, c.longestMs <= REQUEST_TIMEOUT_MS + 2000],
    ['proxy exited 0 on SIGTERM', code === 0],
  ];
  console.log('\nsoak --abuse figures');
  for (const f of [
    `phases (s)               ${PHASES.map(([n]) => `${n} to ${(bounds[n]! / 1000).toFixed(0)}`).join(', ')}`,
    `normal requests          ${normal.sent} sent, ${normal.failed} failed${normal.failures.size ? ` (${[...normal.failures].map(([w, n]) => `${w} x${n}`).join('; ')})` : ''}`,
    `normal p99               quiet ${p99Quiet.toFixed(2)} ms, abuse ${p99Abuse.toFixed(2)} ms (x${(p99Abuse / p99Quiet).toFixed(2)}), recovery ${p99('recovery').toFixed(2)} ms; p50 quiet ${percentile(normal.latencies.get('quiet') ?? [], 50).toFixed(2)}, abuse ${percentile(normal.latencies.get('abuse') ?? [], 50).toFixed(2)} ms`,
    `resident memory          quiet ${mib(rssQuiet)}, abuse peak ${mib(rssAbusePeak)} (VmHWM ${mib(hwm)}), after ${mib(rssAfter)}; ceiling ${mib(ceiling)}; at most ${maxOpen} abusive connections open`,
    `abusive connections      opened ${c.opened}, closed by the proxy ${closedByProxy} (${Object.entries(c.closedBy).map(([k, n]) => `after ${k}: ${n}`).join(', ')}), errors ${c.errors}, left open ${final.leftOpen}, longest ${(c.longestMs / 1000).toFixed(1)} s`,
    `abusive requests         ${r.sent} sent: ${Object.entries(r.byStatus).map(([s, n]) => `${s}: ${n}`).join(', ')}; no answer ${r.noAnswer}`,
    `audit lines              normal ${normalLines}, abusive ${abusiveLines} (${[...byReason].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}), system ${lines.length - requestLines.length}`,
    `connections dropped      ${dropped} (MAX_CONNECTIONS ${MAX_CONNECTIONS})`,
    `all abusive closed at    ${allClosedAtS ?? 'never'} s (recovery began ${(bounds.abuse! / 1000).toFixed(0)} s)`,
    `v8 heap                  ${heap.join('; ')}`,
    `rss samples (s: MiB)     ${samples.filter((_, i) => i % 5 === 0).map((s) => `${s.atS}: ${(s.rss / MiB).toFixed(0)}`).join(', ')}`,
  ]) console.log(`  ${f}`);
  console.log('');
  for (const [name, ok] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${name}`);
  rmSync(dir, { recursive: true, force: true });
  return checks.every(([, ok]) => ok) ? 0 : 1;
}

interface AttackStats {
  connections: { opened: number; closedBy: Record<string, number>; longestMs: number; responses: number; errors: number; open: number };
  requests: { sent: number; byStatus: Record<string, number>; noAnswer: number };
}
