// npm run soak: the proxy under steady load for a long time, as `serve` runs it.
// npm run soak -- --abuse: the same beside abusive clients instead (bench/abuse/run.ts).
//
//   SOAK_MINUTES  how long (default 10)
//   SOAK_RATE     requests per second, bounded (default 200)
//
// This process runs a GitLab stand-in and the load generator; the proxy is a child process
// (`node src/cli.ts serve`) with its audit log in a file, the GitLab token and the JWT key in
// files, and its admin listener on an ephemeral port. During the run:
//   - every 30 s the policy file is rewritten with a changed comment (a real reload);
//   - half-way, the GitLab token file is rotated (the stand-in accepts the old and new token);
// At the end the proxy gets SIGTERM, and the run passes only if:
//   - no request failed (every response had the status its kind expects, whole bodies);
//   - the audit log has exactly one line per request sent (plus the reload lines);
//   - the proxy reloaded the policy every time, and used the new token after the rotation;
//   - resident memory at the end has not grown more than 10% over the figure after warm-up
//     (each the median of three samples 10 s apart);
//   - the proxy exited 0.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintToken } from '../src/auth/mint.ts';
import { startGitLabStandIn } from '../test/support/gitlab-standin.ts';
import { envNumber } from './lib/env.ts';

const MINUTES = envNumber('SOAK_MINUTES', 10, 0.1, 24 * 60);
const RATE = envNumber('SOAK_RATE', 200, 1, 5000);
const DURATION_MS = Math.round(MINUTES * 60_000);
const WARMUP_MS = Math.min(60_000, Math.max(5_000, DURATION_MS * 0.1));
const RELOAD_EVERY_MS = 30_000;
const TICK_MS = 50;
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_IN_FLIGHT = 2000;
const ARCHIVE_BYTES = 65_536;

interface Kind {
  name: string;
  method: string;
  path: string;
  body?: string;
  expect: number;
  bytes?: number;
}
const KINDS: Kind[] = [
  { name: 'project', method: 'GET', path: '/api/v4/projects/1', expect: 200 },
  { name: 'project', method: 'GET', path: '/api/v4/projects/2', expect: 200 },
  { name: 'project', method: 'GET', path: '/api/v4/projects/3', expect: 200 },
  { name: 'project', method: 'GET', path: '/api/v4/projects/acme%2Fdocs', expect: 200 },
  { name: 'list', method: 'GET', path: '/api/v4/projects?per_page=5&page=2', expect: 200 },
  { name: 'list', method: 'GET', path: '/api/v4/projects/1/repository/tree?ref=main', expect: 200 },
  { name: 'status', method: 'POST', path: '/api/v4/projects/1/statuses/0a1b2c3d', body: '{"state":"success","name":"soak"}', expect: 201 },
  { name: 'archive', method: 'GET', path: `/api/v4/projects/1/repository/archive?bytes=${ARCHIVE_BYTES}`, expect: 200, bytes: ARCHIVE_BYTES },
  { name: 'denied', method: 'GET', path: '/api/v4/user', expect: 403 },
  { name: 'project', method: 'GET', path: '/api/v4/projects/4', expect: 200 },
];

const policyText = (n: number): string => `# reload ${n}
clients:
  soak:
    description: soak test client
    allow:
      - GET /api/v4/projects
      - GET /api/v4/projects/:id
      - GET /api/v4/projects/:id/repository/tree
      - GET /api/v4/projects/:id/repository/archive
      - POST /api/v4/projects/:id/statuses/:sha
`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-soak-'));
  const policyDir = join(dir, 'policies');
  const secrets = join(dir, 'secrets');
  const auditFile = join(dir, 'audit', 'audit.log');
  const tokens = [`glpat-${randomBytes(12).toString('hex')}`, `glpat-${randomBytes(12).toString('hex')}`] as const;
  const jwtSecret = randomBytes(32).toString('hex');
  for (const d of [policyDir, secrets]) mkdirSync(d, { recursive: true });
  writeFileSync(join(policyDir, 'soak.yaml'), policyText(0));
  writeFileSync(join(secrets, 'gitlab_token'), `${tokens[0]}\n`);
  writeFileSync(join(secrets, 'jwt_secret'), jwtSecret);

  const standin = await startGitLabStandIn({ validTokens: [...tokens] });
  const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'src', 'cli.ts'), 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      GITLAB_URL: standin.url,
      GITLAB_TOKEN_FILE: join(secrets, 'gitlab_token'),
      PROXY_JWT_SECRET_FILE: join(secrets, 'jwt_secret'),
      POLICY_DIR: policyDir,
      PORT: '0',
      HOST: '127.0.0.1',
      ADMIN_PORT: '0',
      ADMIN_HOST: '127.0.0.1',
      AUDIT_LOG: auditFile,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (stderr.length > 1_000_000) stderr = stderr.slice(-500_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ports = await new Promise<{ port: number; admin: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${stderr}`)), 15_000);
    const check = (): void => {
      const m = /"port":(\d+).*?"adminPort":(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), admin: Number(m[2]) });
      }
    };
    child.stderr.on('data', check);
    void exited.then(() => reject(new Error(`proxy exited: ${stderr}`)));
  });
  const base = `http://127.0.0.1:${ports.port}`;
  const adminBase = `http://127.0.0.1:${ports.admin}`;
  const jwt = await mintToken({
    client: 'soak', audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 24 * 3600,
    key: { kind: 'secret', secret: new TextEncoder().encode(jwtSecret) },
  });

  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const stats = {
    sent: 0, done: 0, failed: 0, inFlight: 0, byStatus: new Map<number, number>(), failures: new Map<string, number>(),
    latencies: [] as number[],
  };
  const fail = (why: string): void => {
    stats.failed++;
    stats.failures.set(why, (stats.failures.get(why) ?? 0) + 1);
  };
  const fire = (kind: Kind): void => {
    stats.sent++;
    stats.inFlight++;
    const start = performance.now();
    let settled = false;
    const settle = (why: string | null): void => {
      if (settled) return;
      settled = true;
      stats.inFlight--;
      stats.done++;
      if (why) fail(`${kind.name}: ${why}`);
      else if (stats.latencies.length < 2_000_000) stats.latencies.push(performance.now() - start);
    };
    const headers: Record<string, string> = { 'PRIVATE-TOKEN': jwt };
    if (kind.body) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(kind.body));
    }
    const req = request(`${base}${kind.path}`, { method: kind.method, headers, agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      stats.byStatus.set(res.statusCode ?? 0, (stats.byStatus.get(res.statusCode ?? 0) ?? 0) + 1);
      let size = 0;
      res.on('data', (c: Buffer) => (size += c.length));
      res.on('end', () => {
        if (res.statusCode !== kind.expect) settle(`status ${res.statusCode}`);
        else if (kind.bytes !== undefined && size !== kind.bytes) settle(`body ${size} bytes`);
        else settle(null);
      });
      res.on('error', (err) => settle(`response ${err.message}`));
      res.on('aborted', () => settle('response aborted'));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => settle(`request ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    req.end(kind.body);
  };

  const metric = async (name: string, labels = ''): Promise<number> => {
    const text = await new Promise<string>((resolve, reject) => {
      request(`${adminBase}/metrics`, { agent: false }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve(t));
      }).on('error', reject).end();
    });
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
    return line ? Number(line.split(' ').at(-1)) : NaN;
  };

  // Token usage seen by GitLab, counted as it goes (the stand-in's log is emptied each second).
  const seenTokens = new Map<string, number>();
  const drainStandin = (): void => {
    for (const r of standin.requests) {
      const t = String(r.headers['private-token']);
      const name = t === tokens[0] ? 'old' : t === tokens[1] ? 'new' : 'other';
      seenTokens.set(name, (seenTokens.get(name) ?? 0) + 1);
    }
    standin.reset();
  };

  console.log(`soak: ${MINUTES} min at ${RATE} req/s through ${base} (admin ${adminBase}); warm-up ${WARMUP_MS / 1000} s`);
  const started = performance.now();
  let nextReload = RELOAD_EVERY_MS;
  let reloads = 0;
  let rotated = false;
  const rssSamples: { atS: number; rss: number }[] = [];
  let nextSample = 0;
  let k = 0;
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= DURATION_MS) break;
    // Bounded rate: what the schedule owes by now, never more than MAX_IN_FLIGHT outstanding.
    const owed = Math.floor((elapsed / 1000) * RATE) - stats.sent;
    for (let i = 0; i < owed; i++) {
      if (stats.inFlight >= MAX_IN_FLIGHT) {
        fail('generator: too many requests in flight');
        stats.sent++;
        continue;
      }
      fire(KINDS[k++ % KINDS.length]!);
    }
    if (elapsed >= nextReload) {
      nextReload += RELOAD_EVERY_MS;
      reloads++;
      writeFileSync(join(policyDir, 'soak.yaml'), policyText(reloads));
    }
    // Half-way, off the 30 s reload beat so the two show as separate reloads.
    if (!rotated && elapsed >= DURATION_MS / 2 + 7_000) {
      rotated = true;
      writeFileSync(join(secrets, 'gitlab_token'), `${tokens[1]}\n`);
      console.log(`soak: rotated the GitLab token file at ${(elapsed / 1000).toFixed(0)} s`);
    }
    if (elapsed >= nextSample) {
      nextSample += 10_000;
      const rss = await metric('process_resident_memory_bytes');
      rssSamples.push({ atS: Math.round(elapsed / 1000), rss });
      console.log(`soak: ${Math.round(elapsed / 1000)} s sent ${stats.sent} done ${stats.done} failed ${stats.failed} in flight ${stats.inFlight} rss ${mib(rss)}`);
    }
    drainStandin();
    await sleep(TICK_MS);
  }
  // Let the last requests finish (bounded), then measure and stop.
  const drainEnd = performance.now() + 15_000;
  while (stats.inFlight > 0 && performance.now() < drainEnd) await sleep(20);
  await sleep(1000); // the last reload's debounce
  const elapsedS = (performance.now() - started) / 1000;
  rssSamples.push({ atS: Math.round((performance.now() - started) / 1000), rss: await metric('process_resident_memory_bytes') });
  // Each figure is the median of three samples 10 s apart, so one GC cycle does not decide it:
  // after warm-up, the first three at or after WARMUP_MS; at the end, the last three.
  const median3 = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const rssWarm = median3(rssSamples.filter((x) => x.atS * 1000 >= WARMUP_MS).slice(0, 3).map((x) => x.rss));
  const rssEnd = median3(rssSamples.slice(-3).map((x) => x.rss));
  const reloadOk = await metric('gsp_policy_reloads_total', '{result="success"}');
  const reloadFailed = await metric('gsp_policy_reloads_total', '{result="failure"}');
  drainStandin();
  agent.destroy();
  child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(40_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') child.kill('SIGKILL');
  await standin.close();

  const lines = readFileSync(auditFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  const requestLines = lines.filter((l) => l.client !== 'system').length;
  const reloadLines = lines.filter((l) => l.client === 'system' && l.decision === 'reload');
  const tokenReloads = reloadLines.filter((l) => (l.changed as string[]).includes('gitlab-token')).length;
  const policyReloads = reloadLines.filter((l) => (l.changed as string[]).includes('policy')).length;
  const sorted = stats.latencies.sort((a, b) => a - b);
  const pct = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
  const rssGrowth = (rssEnd - rssWarm) / rssWarm;

  const checks: [string, boolean][] = [
    ['no failed requests', stats.failed === 0 && stats.done === stats.sent],
    ['one audit line per request', requestLines === stats.sent],
    ['every policy rewrite reloaded', policyReloads === reloads && reloadOk === reloadLines.length && reloadFailed === 0],
    ['token rotated once and used', tokenReloads === 1 && (seenTokens.get('new') ?? 0) > 0 && (seenTokens.get('other') ?? 0) === 0],
    // A leak shows as growth; less memory at the end than after warm-up is not a failure.
    ['memory at the end within 10% of after warm-up (no growth over 10%)', rssGrowth <= 0.1],
    ['proxy exited 0 on SIGTERM', code === 0],
  ];
  const figures = [
    `duration                 ${elapsedS.toFixed(1)} s (warm-up ${WARMUP_MS / 1000} s)`,
    `requests sent            ${stats.sent} (${(stats.sent / elapsedS).toFixed(1)} req/s; target ${RATE})`,
    `responses by status      ${[...stats.byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', ')}`,
    `failed requests          ${stats.failed}${stats.failures.size ? ` (${[...stats.failures].map(([w, n]) => `${w} x${n}`).join('; ')})` : ''}`,
    `latency (client side)    p50 ${pct(50).toFixed(2)} ms, p99 ${pct(99).toFixed(2)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(2)} ms`,
    `audit lines              ${requestLines} request lines for ${stats.sent} requests; ${reloadLines.length} reload lines; ${lines.length} in all`,
    `policy reloads           ${reloads} rewrites, ${policyReloads} audited, metric success ${reloadOk} failure ${reloadFailed}`,
    `token rotation           ${tokenReloads} reload(s) with gitlab-token; GitLab saw old token x${seenTokens.get('old') ?? 0}, new token x${seenTokens.get('new') ?? 0}, other x${seenTokens.get('other') ?? 0}`,
    `resident memory          after warm-up ${mib(rssWarm)}, at the end ${mib(rssEnd)} (${rssGrowth >= 0 ? '+' : ''}${(rssGrowth * 100).toFixed(1)}%; medians of 3 samples)`,
    `rss samples (s: MiB)     ${rssSamples.map((s) => `${s.atS}: ${(s.rss / 1048576).toFixed(0)}`).join(', ')}`,
    `proxy exit code          ${code}`,
  ];
  console.log('\nsoak figures');
  for (const f of figures) console.log(`  ${f}`);
  console.log('');
  for (const [name, ok] of checks) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${name}`);
  rmSync(dir, { recursive: true, force: true });
  return checks.every(([, ok]) => ok) ? 0 : 1;
}

const run = process.argv.includes('--abuse') ? (await import('./abuse/run.ts')).runAbuseSoak : main;
run().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : String(err));
    process.exit(1);
  },
);
