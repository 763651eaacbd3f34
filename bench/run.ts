// npm run bench: what gitlab-scope-proxy costs over a bare Node proxy, whether it streams
// large responses in bounded memory, and what a 20,000-rule policy costs. See bench/README.md.
//
// Process layout (loopback only): this process runs the load generator (autocannon) and the
// streaming client; the upstream runs in its own process; each proxy under test runs in its
// own process (proxy-child.ts). So the load generator never shares an event loop with what it
// measures, and the three compete only for CPU cores, as they would on any shared host.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stripTypeScriptTypes } from 'node:module';
import { mintToken } from '../src/auth/mint.ts';
import { compilePolicy, loadPolicyDir } from '../src/policy/load.ts';
import { canPin, killAll, pinToCpus, procCpuSeconds, procVmHwm, startChild, type Child, type ChildReply } from './lib/children.ts';
import { mergeRuns, runFailed, runLoad, type LoadResult, type LoadSettings } from './lib/load.ts';
import { ARCHIVE_PATH, BENCH_CLIENT, BENCH_PATH, LARGE_CLIENTS, LARGE_RULES_PER_CLIENT, largeClientName, largePolicy, smallPolicy } from './lib/policy.ts';
import { fmt, fmtInt, median, MB, MiB, percentile, table } from './lib/stats.ts';

// ---------------------------------------------------------------------------------------
// Settings

/** A setting the bench cannot run with: say which, and stop before starting anything. */
function badSetting(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

function envNumber(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) badSetting(`${name} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return v;
}

const QUICK = process.env.BENCH_QUICK === '1';
const settings = {
  quick: QUICK,
  duration: envNumber('BENCH_DURATION', QUICK ? 2 : 10, 1, 600),
  // Long enough for every target to reach its steady state: V8 was still making optimized
  // versions of the proxy's request path 15 s into a load (--trace-opt; bench/README.md), while
  // the passthroughs settle within 2 s. Each target gets the same warm-up.
  warmup: envNumber('BENCH_WARMUP', QUICK ? 1 : 15, 0, 60),
  connections: Math.round(envNumber('BENCH_CONNECTIONS', 50, 1, 1000)),
  pipelining: 1,
  reps: Math.round(envNumber('BENCH_REPS', QUICK ? 1 : 2, 1, 20)),
  /** Processes each of the hono+HPM passthrough and gitlab-scope-proxy in sections 1 and 1c. */
  instances: Math.round(envNumber('BENCH_INSTANCES', QUICK ? 1 : 3, 1, 8)),
  streamBytes: Math.round(envNumber('BENCH_STREAM_MIB', QUICK ? 32 : 256, 1, 4096) * MiB),
  pauseMs: QUICK ? 500 : 2000,
  profile: process.env.BENCH_PROFILE === '1',
  allocProfile: process.env.BENCH_PROFILE === 'alloc',
  /** A/A calibration: every place of gitlab-scope-proxy runs the hono+HPM passthrough instead,
   *  so each "proxy vs passthrough" figure compares identical code and shows what the machine
   *  alone makes of it. */
  aa: process.env.BENCH_AA === '1',
  pin: process.env.BENCH_PIN !== '0',
  /** How the proxy writes its audit log: production (default), createAuditLog, or off. */
  audit: process.env.BENCH_AUDIT || 'production',
  /** What the proxy runs: dist (default: src/ compiled first, as `npm start` and the image
   *  run it) or src (the TypeScript through Node's type stripping, as tests and `npm run
   *  demo` do; ~28 MiB more resident memory). */
  code: process.env.BENCH_CODE || 'dist',
  /** Extra Node flags for gitlab-scope-proxy's processes only, after npm start's (e.g.
   *  "--max-semi-space-size=4", as an operator's NODE_OPTIONS would add them). */
  proxyFlags: (process.env.BENCH_PROXY_FLAGS ?? '').split(/\s+/).filter(Boolean),
};
if (!['dist', 'src'].includes(settings.code)) badSetting(`BENCH_CODE must be dist or src, got ${JSON.stringify(settings.code)}`);
if (!['production', 'createAuditLog', 'off'].includes(settings.audit)) badSetting(`BENCH_AUDIT must be production, createAuditLog or off, got ${JSON.stringify(settings.audit)}`);
const load: LoadSettings = { connections: settings.connections, pipelining: settings.pipelining, duration: settings.duration };
const warm: LoadSettings = { ...load, duration: settings.warmup };
// Light load: one connection, so nothing queues and p50 is the time one request takes.
const light: LoadSettings = { connections: 1, pipelining: 1, duration: Math.max(1, Math.min(3, Math.round(settings.duration / 3))) };

// CPU placement. With pinning, the process under test has a core to itself and the load
// generator and upstream share the rest, so a proxy's req/s is bounded by its own CPU cost.
const ncpu = cpus().length;
const placement = settings.pin && ncpu >= 2 && canPin()
  ? ncpu >= 3
    ? { parent: '0', upstream: '1', proxy: `2-${ncpu - 1}` }
    : { parent: '0', upstream: '0', proxy: '1' }
  : undefined;

/** Seconds per alternating slice of the fixed-rate section (1c). */
const FIXED_SLICE_S = 2;
const TARGETS = { rpsRatio: 0.8, addedP50Ms: 1, peakRssBytes: 120 * MB, stackRatio: 0.8, fixedRateAddedP99Ms: 2 };

const HERE = new URL('.', import.meta.url);
const OUT_DIR = fileURLToPath(new URL('out/', HERE));
const UPSTREAM_SCRIPT = new URL('upstream.ts', HERE);
let CHILD_SCRIPT = new URL('proxy-child.ts', HERE);

const problems: string[] = [];
const say = (line = ''): void => console.log(line);
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');

// Never hang: the whole run is bounded.
const budgetS = 120 + settings.warmup * (4 + 2 * settings.instances) + settings.duration * (3 + settings.reps * (6 + 2 * settings.instances)) + light.duration * (1 + settings.reps * 2) + settings.streamBytes / (20 * MB);
const watchdog = setTimeout(() => {
  console.error(`bench: exceeded its time budget of ${Math.round(budgetS)} s; stopping`);
  killAll();
  process.exit(2);
}, budgetS * 1000);
watchdog.unref();
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------
// Helpers

async function preflight(label: string, url: string, headers: Record<string, string>): Promise<void> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${label}: preflight GET ${url} answered ${res.status}: ${body.slice(0, 200)}`);
}

/** One load run; with `pid`, also the CPU time that process used during the run. */
async function measure(label: string, url: string, headers: Record<string, string>, s: LoadSettings, pid?: number): Promise<LoadResult> {
  const cpu0 = procCpuSeconds(pid);
  const t = performance.now();
  const r = await runLoad(label, url, headers, s);
  const cpu1 = procCpuSeconds(pid);
  if (cpu0 !== null && cpu1 !== null) {
    r.cpuShare = (cpu1 - cpu0) / ((performance.now() - t) / 1000);
    r.cpuUsPerReq = ((cpu1 - cpu0) * 1e6) / Math.max(r.requests, 1);
  }
  if (runFailed(r)) {
    problems.push(
      `${label}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx (status codes ${JSON.stringify(r.statusCodes)})` +
        (r.firstError ? `; first error: ${r.firstError}` : ''),
    );
  }
  return r;
}

function progress(r: LoadResult): void {
  const cpu = r.cpuShare !== undefined ? `  CPU ${fmt(100 * r.cpuShare, 0)}%, ${fmt(r.cpuUsPerReq!, 0)} us/req` : '';
  say(`  ${r.label.padEnd(34)} ${fmtInt(r.rps).padStart(7)} req/s  p50 ${fmt(r.p50Ms, 3)} ms  p99 ${fmt(r.p99Ms, 3)} ms${cpu}` + (runFailed(r) ? '  (ERRORS)' : ''));
}

interface Summary {
  runs: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Median CPU share of the process under test (NaN when not measured). */
  cpuShare: number;
  /** Median CPU microseconds per request of the process under test (NaN when not measured). */
  cpuUsPerReq: number;
}

const summarize = (runs: LoadResult[]): Summary => ({
  runs: runs.length,
  rps: median(runs.map((r) => r.rps)),
  p50Ms: median(runs.map((r) => r.p50Ms)),
  p99Ms: median(runs.map((r) => r.p99Ms)),
  cpuShare: median(runs.map((r) => r.cpuShare ?? NaN)),
  cpuUsPerReq: median(runs.map((r) => r.cpuUsPerReq ?? NaN)),
});

interface StreamResult {
  label: string;
  bytes: number;
  seconds: number;
  mbPerS: number;
  pausedMs: number;
}

/** GETs `path` from `base`, consuming the body without keeping it; optionally pauses reading
 *  for `pauseMs` after the first `pauseAfter` bytes (a slow client: tests backpressure). */
function stream(label: string, base: string, headers: Record<string, string>, bytes: number, pause?: { after: number; ms: number }): Promise<StreamResult> {
  const url = `${base}${ARCHIVE_PATH}?bytes=${bytes}`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let got = 0;
    let paused = false;
    const req = get(url, { headers, agent: false }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`${label}: GET ${url} answered ${res.statusCode}`));
      }
      res.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (pause && !paused && got >= pause.after) {
          paused = true;
          res.pause();
          setTimeout(() => res.resume(), pause.ms);
        }
      });
      res.on('end', () => {
        const seconds = (performance.now() - started) / 1000;
        if (got !== bytes) return reject(new Error(`${label}: received ${got} of ${bytes} bytes`));
        const active = seconds - (pause ? pause.ms / 1000 : 0);
        resolve({ label, bytes: got, seconds, mbPerS: got / MB / active, pausedMs: pause?.ms ?? 0 });
      });
      res.on('error', reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error(`${label}: stream timed out`)));
    req.on('error', reject);
  });
}

function countLines(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    createReadStream(path)
      .on('data', (chunk: Buffer | string) => {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
      })
      .on('end', () => resolve(n))
      .on('error', reject);
  });
}

const mib = (bytes: number | null | undefined): string => (bytes == null ? 'n/a' : `${fmt(bytes / MiB, 1)} MiB`);
const mb = (bytes: number | null | undefined): string => (bytes == null ? 'n/a' : `${fmt(bytes / MB, 1)} MB`);

/** Which code was measured: the commit, whether src/ had uncommitted changes, and a hash of
 *  src/ as it was on disk, so two runs can be told apart when the working tree moves. */
function sourceFingerprint(): { commit: string | null; srcChangedFiles: number | null; srcSha256: string } {
  const root = fileURLToPath(new URL('..', HERE));
  const git = (...args: string[]): string | null => {
    const r = spawnSync('git', args, { cwd: root, encoding: 'utf8', timeout: 5000 });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  const hash = createHash('sha256');
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  for (const file of walk(join(root, 'src')).sort()) hash.update(file.slice(root.length)).update('\0').update(readFileSync(file)).update('\0');
  const status = git('status', '--porcelain', '--', 'src');
  return { commit: git('rev-parse', '--short', 'HEAD'), srcChangedFiles: status === null ? null : status.split('\n').filter(Boolean).length, srcSha256: hash.digest('hex') };
}

// ---------------------------------------------------------------------------------------
// Setup

const tmp = mkdtempSync(join(tmpdir(), 'gsp-bench-'));
const realToken = `glpat-${randomBytes(15).toString('hex')}`;
const jwtSecret = randomBytes(32).toString('base64url');
const smallDir = join(tmp, 'policy-small');
const largeDir = join(tmp, 'policy-large');
mkdirSync(smallDir);
mkdirSync(largeDir);
writeFileSync(join(smallDir, 'bench.yaml'), smallPolicy());
const largeSources = largePolicy();
for (const src of largeSources) writeFileSync(join(largeDir, src.display.split('/').pop()!), src.text);
const largeBenchClient = largeClientName(Math.floor(LARGE_CLIENTS / 2));

const mint = (client: string): Promise<string> =>
  mintToken({ client, audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 3600, key: { kind: 'secret', secret: new TextEncoder().encode(jwtSecret) } });
const smallJwt = await mint(BENCH_CLIENT);
const largeJwt = await mint(largeBenchClient);

/** The Node flags `npm start` runs the proxy with (package.json scripts.start), so the bench
 *  measures the process production runs. */
const START_FLAGS = ((): string[] => {
  const start = (JSON.parse(readFileSync(new URL('../package.json', HERE), 'utf8')) as { scripts: Record<string, string> }).scripts['start'] ?? '';
  // "exec node ...": npm start replaces its shell with node, so signals reach the proxy.
  const words = start.trim().split(/\s+/).filter((w, i) => !(i === 0 && w === 'exec'));
  return words[0] === 'node' ? words.slice(1).filter((w) => w.startsWith('--')) : [];
})();
const childExecArgv = (name: string): string[] => [
  '--expose-gc',
  ...(name.startsWith('proxy') && !settings.aa ? [...START_FLAGS, ...settings.proxyFlags] : []),
  ...(settings.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(OUT_DIR, 'profiles')}`, `--cpu-prof-name=${name}-${process.pid}.cpuprofile`] : []),
];
const childOpts = (name: string): { execArgv: string[]; cpus?: string } => ({ execArgv: childExecArgv(name), ...(placement ? { cpus: placement.proxy } : {}) });
/** BENCH_PROFILE=alloc: each process under test writes an allocation profile (proxy-child.ts). */
const allocEnv: Record<string, string> = settings.allocProfile ? { BENCH_ALLOC_PROFILE: join(OUT_DIR, 'profiles') } : {};
if (settings.allocProfile) mkdirSync(join(OUT_DIR, 'profiles'), { recursive: true });
const proxyEnv = (upstreamUrl: string, policyDir: string, auditName: string): Record<string, string> => settings.aa ? bareEnv(upstreamUrl, 'stack') : ({
  BENCH_ROLE: 'proxy',
  BENCH_UPSTREAM_URL: upstreamUrl,
  BENCH_UPSTREAM_TOKEN: realToken,
  BENCH_JWT_SECRET: jwtSecret,
  BENCH_POLICY_DIR: policyDir,
  BENCH_AUDIT_LOG: join(tmp, auditName),
  BENCH_CODE: settings.code,
  BENCH_REPO_URL: new URL('../', HERE).href,
  ...allocEnv,
});
const bareEnv = (upstreamUrl: string, role: 'bare' | 'stack' = 'bare'): Record<string, string> => ({ BENCH_ROLE: role, BENCH_UPSTREAM_URL: upstreamUrl, BENCH_UPSTREAM_TOKEN: realToken, ...allocEnv });

const source = sourceFingerprint();
if (settings.code === 'dist') {
  // The same compile as `npm run build` (tsconfig.build.json), so dist/ is src/ as it is now.
  const built = spawnSync(process.execPath, [fileURLToPath(new URL('../node_modules/typescript/bin/tsc', HERE)), '-p', fileURLToPath(new URL('../tsconfig.build.json', HERE))], { stdio: 'inherit' });
  if (built.status !== 0) badSetting('BENCH_CODE=dist: compiling src/ to dist/ failed (npm run build)');
  // The child scripts themselves as JavaScript too: importing any .ts file loads Node's type
  // stripper (~28 MiB resident), which `node dist/cli.js` never does. Both roles run them,
  // so the bare proxy's figures stay comparable.
  const jsDir = join(OUT_DIR, 'js');
  mkdirSync(jsDir, { recursive: true });
  for (const name of ['proxy-child', 'bare-proxy', 'stack-proxy']) {
    const js = stripTypeScriptTypes(readFileSync(new URL(`${name}.ts`, HERE), 'utf8'), { mode: 'strip' })
      .replaceAll("'./bare-proxy.ts'", "'./bare-proxy.mjs'")
      .replaceAll("'./stack-proxy.ts'", "'./stack-proxy.mjs'");
    writeFileSync(join(jsDir, `${name}.mjs`), js);
  }
  CHILD_SCRIPT = pathToFileURL(join(jsDir, 'proxy-child.mjs'));
}
const startedAt = new Date();
const t0 = performance.now();
let exitCode = 0;
const report: Record<string, unknown> = {};

try {
  say(`gitlab-scope-proxy bench  (node ${process.version}, ${ncpu} CPUs, ${cpus()[0]?.model ?? '?'}, load average ${loadavg().map((l) => fmt(l)).join(' ')})`);
  say(
    `load: autocannon, ${settings.connections} connections, pipelining ${settings.pipelining}, ${settings.duration} s per run after a ${settings.warmup} s warm-up; ` +
      `${settings.reps} interleaved repetition(s) over ${settings.instances} process(es) each of the passthrough and the proxy; medians reported${QUICK ? '  [BENCH_QUICK]' : ''}`,
  );
  say(`source: commit ${source.commit ?? '?'}${source.srcChangedFiles ? `, ${source.srcChangedFiles} uncommitted change(s) in src/` : ''}, src/ sha256 ${source.srcSha256.slice(0, 12)}; proxy runs ${settings.code === 'dist' ? 'dist/ (src/ compiled, as npm start does)' : 'src/ (type stripping)'}`);
  if (settings.aa) say('A/A CALIBRATION (BENCH_AA=1): every "gitlab-scope-proxy" below is the hono+HPM passthrough; each proxy-vs-passthrough figure compares identical code');
  else say(`gitlab-scope-proxy runs with the Node flags of npm start: ${START_FLAGS.join(' ') || '(none)'}${settings.proxyFlags.length ? `, plus BENCH_PROXY_FLAGS: ${settings.proxyFlags.join(' ')}` : ''}`);
  if (loadavg()[0]! > ncpu / 2) say(`note: the machine is already busy (1-minute load average ${fmt(loadavg()[0]!)} on ${ncpu} CPUs): expect noisy figures`);
  if (placement && !pinToCpus(process.pid, placement.parent)) throw new Error('could not pin the load generator (set BENCH_PIN=0)');
  say(
    placement
      ? `processes: load generator (this process) on CPU ${placement.parent}, upstream on CPU ${placement.upstream}, process under test alone on CPU ${placement.proxy}`
      : `processes: load generator (this process), upstream and process under test in separate processes, not pinned${settings.pin ? ' (pinning unavailable)' : ' (BENCH_PIN=0)'}`,
  );
  say();

  const upstream = await startChild('upstream', UPSTREAM_SCRIPT, { BENCH_ROLE: 'upstream', BENCH_UPSTREAM_TOKEN: realToken }, placement ? { cpus: placement.upstream } : {});
  const bare = await startChild('bare proxy', CHILD_SCRIPT, bareEnv(upstream.url), childOpts('bare'));
  // Several processes each of the passthrough and the proxy: one process of the same code can
  // run 10-40 % slower than another for its whole life on this VM (docs/benchmarks.md), so a
  // figure from one process per target is a draw, not a measurement.
  const instances = Array.from({ length: settings.instances }, (_, i) => i);
  const stacks: Child[] = [];
  const proxies: Child[] = [];
  for (const i of instances) {
    stacks.push(await startChild(`hono + http-proxy-middleware passthrough #${i + 1}`, CHILD_SCRIPT, bareEnv(upstream.url, 'stack'), childOpts(`stack${i + 1}`)));
    proxies.push(await startChild(`gitlab-scope-proxy #${i + 1}`, CHILD_SCRIPT, proxyEnv(upstream.url, smallDir, `audit-small-${i + 1}.log`), childOpts(`proxy${i + 1}`)));
  }
  const proxy = proxies[0]!;
  const large = await startChild('gitlab-scope-proxy (large policy)', CHILD_SCRIPT, proxyEnv(upstream.url, largeDir, 'audit-large.log'), childOpts('proxy-large'));

  const direct = { label: 'direct (upstream)', url: upstream.url + BENCH_PATH, headers: { 'private-token': realToken } };
  type Group = 'bare' | 'stack' | 'proxy' | 'large';
  interface Target { group: Group; label: string; url: string; headers: Record<string, string>; pid: number | undefined; runs: LoadResult[]; audit?: string; answered: number }
  const target = (group: Group, label: string, child: Child, jwt: string, audit?: string): Target =>
    ({ group, label, url: child.url + BENCH_PATH, headers: { 'private-token': jwt }, pid: child.proc.pid, runs: [], audit, answered: 1 });
  const numbered = (label: string, i: number): string => (settings.instances > 1 ? `${label} p${i + 1}` : label);
  const bareT = target('bare', 'bare Node passthrough', bare, smallJwt);
  const stackTs = stacks.map((c, i) => target('stack', numbered('hono+HPM passthrough', i), c, smallJwt));
  const proxyTs = proxies.map((c, i) => target('proxy', numbered('gitlab-scope-proxy', i), c, smallJwt, `audit-small-${i + 1}.log`));
  const largeT = target('large', 'scope-proxy, large policy', large, largeJwt, 'audit-large.log');
  // Measured in this order in every repetition: each passthrough process next to a proxy
  // process, so a slow drift of the machine falls on both of a pair.
  const order: Target[] = [bareT, ...instances.flatMap((i) => [stackTs[i]!, proxyTs[i]!]), largeT];
  for (const t of [direct, ...order]) await preflight(t.label, t.url, t.headers);

  // -- Section 1: requests/s and latency -------------------------------------------------
  say(`== 1. Throughput and latency: GET ${BENCH_PATH} (~300 B JSON), ${settings.connections} connections, ${settings.instances} process(es) each of the hono+HPM passthrough and gitlab-scope-proxy ==`);
  if (settings.warmup > 0) await measure(`${direct.label} warm-up`, direct.url, direct.headers, warm);
  const directRun = await measure(direct.label, direct.url, direct.headers, load, upstream.proc.pid);
  progress(directRun);
  if (settings.warmup > 0) {
    for (const t of order) t.answered += (await measure(`${t.label} warm-up`, t.url, t.headers, warm)).requests;
  }
  for (let rep = 0; rep < settings.reps; rep++) {
    for (const t of order) {
      const r = await measure(`${t.label} #${rep + 1}`, t.url, t.headers, load, t.pid);
      t.runs.push(r);
      t.answered += r.requests;
      progress(r);
    }
  }
  /** Every run of a group, all its processes pooled: its medians are the group's figures. */
  const runs = {
    bare: bareT.runs,
    stack: stackTs.flatMap((t) => t.runs),
    proxy: proxyTs.flatMap((t) => t.runs),
    large: largeT.runs,
  };
  const loadPeak = { proxy: procVmHwm(proxy.proc.pid), bare: procVmHwm(bare.proc.pid), large: procVmHwm(large.proc.pid) };

  // -- Section 1c: latency at a fixed rate ---------------------------------------------------
  // Half of what the hono+HPM passthrough sustains, the same for both: a load both keep up
  // with, so p99 shows the time a request takes plus ordinary queueing, not saturation.
  const stackRps = median(runs.stack.map((r) => r.rps));
  // Twice as long as a saturating run: a p99 is set by rare stalls (a collection, the
  // machine's other work), and more of them per run make it steadier.
  const fixed: LoadSettings = { ...load, duration: 2 * load.duration, rate: Math.max(1, Math.round(stackRps / 2)) };
  say();
  say(`== 1c. Latency at a fixed rate: ${fmtInt(fixed.rate!)} req/s (half the hono+HPM passthrough's), ${settings.connections} connections ==`);
  // Context: the same paced load straight to the upstream, the latency floor of the load
  // generator, the upstream and this machine (a tail here is not the proxies').
  const directFixed = await measure(`${direct.label} at ${fmtInt(fixed.rate!)}/s`, direct.url, direct.headers, fixed, upstream.proc.pid);
  progress(directFixed);
  // Each repetition alternates the two in short slices and pools each one's latencies: a stall
  // of the machine (this VM has them, of 10-450 ms) then falls on either target alike, instead
  // of setting the p99 of whichever run it hit. Successive slices go to successive processes.
  const slices = Math.max(1, Math.round(fixed.duration / FIXED_SLICE_S));
  const slice: LoadSettings = { ...fixed, duration: fixed.duration / slices };
  const fixedRuns: { stack: LoadResult[]; proxy: LoadResult[] } = { stack: [], proxy: [] };
  /** proxy p99 - passthrough p99 of each pair of adjacent slices. */
  const slicePairs: number[] = [];
  for (let rep = 0; rep < settings.reps; rep++) {
    const parts: { stack: LoadResult[]; proxy: LoadResult[] } = { stack: [], proxy: [] };
    for (let i = 0; i < slices; i++) {
      const p = (rep * slices + i) % settings.instances;
      for (const t of [stackTs[p]!, proxyTs[p]!]) {
        const r = await measure(`${t.label} at ${fmtInt(fixed.rate!)}/s #${rep + 1}.${i + 1}`, t.url, t.headers, slice, t.pid);
        parts[t.group as 'stack' | 'proxy'].push(r);
        t.answered += r.requests;
      }
      slicePairs.push(parts.proxy.at(-1)!.p99Ms - parts.stack.at(-1)!.p99Ms);
    }
    for (const key of ['stack', 'proxy'] as const) {
      const r = mergeRuns(`${key === 'stack' ? 'hono+HPM passthrough' : 'gitlab-scope-proxy'} at ${fmtInt(fixed.rate!)}/s #${rep + 1}`, parts[key]);
      fixedRuns[key].push(r);
      progress(r);
    }
  }
  for (const c of stacks) await c.stop();
  const fixedStack = summarize(fixedRuns.stack);
  const fixedProxy = summarize(fixedRuns.proxy);
  const fixedAddedP99 = fixedProxy.p99Ms - fixedStack.p99Ms;
  say();
  say(
    table(['target (fixed rate)', 'runs', 'req/s', 'p50 ms', 'p99 ms', 'CPU %', 'CPU us/req'], [
      ['direct (upstream)', summarize([directFixed])], ['hono+HPM passthrough', fixedStack], ['gitlab-scope-proxy', fixedProxy],
    ].map(([name, sum]) => {
      const x = sum as Summary;
      return [name as string, String(x.runs), fmtInt(x.rps), fmt(x.p50Ms, 3), fmt(x.p99Ms, 3), fmt(100 * x.cpuShare, 0), fmt(x.cpuUsPerReq, 0)];
    })),
  );
  say(`proxy p99 - hono+HPM p99 at ${fmtInt(fixed.rate!)} req/s = ${fmt(fixedAddedP99, 3)} ms   (target < ${TARGETS.fixedRateAddedP99Ms} ms)   ${verdict(fixedAddedP99 < TARGETS.fixedRateAddedP99Ms)}` +
    `   per pair: ${fixedRuns.proxy.map((r, i) => fmt(r.p99Ms - fixedRuns.stack[i]!.p99Ms, 3)).join(', ')} ms`);
  const sortedSlicePairs = [...slicePairs].sort((a, b) => a - b);
  const sliceAddedP99 = median(slicePairs);
  say(`  the same, slice by slice (${slicePairs.length} pairs of adjacent ${fmt(slice.duration, 1)} s slices): median ${fmt(sliceAddedP99, 3)} ms,` +
    ` quartiles ${fmt(percentile(sortedSlicePairs, 25), 3)} .. ${fmt(percentile(sortedSlicePairs, 75), 3)} ms`);

  const directS = summarize([directRun]);
  const bareS = summarize(runs.bare);
  const stackS = summarize(runs.stack);
  const proxyS = summarize(runs.proxy);
  const largeS = summarize(runs.large);
  const rpsRatio = proxyS.rps / bareS.rps;
  const addedP50 = proxyS.p50Ms - bareS.p50Ms;
  /** Per repetition and process, what `of` measured against what `over` measured next to it
   *  (a one-process group stands beside every process of the other). */
  const pairs = (of: Target[], over: Target[], f: (a: LoadResult, b: LoadResult) => number): number[] =>
    Array.from({ length: settings.reps }, (_, rep) => of.map((t, i) => f(t.runs[rep]!, (over[i] ?? over[0]!).runs[rep]!))).flat();
  const rpsOf = (a: LoadResult, b: LoadResult): number => a.rps / b.rps;
  const pairRatios = pairs(proxyTs, [bareT], rpsOf);
  const pairAdded = pairs(proxyTs, [bareT], (a, b) => a.p50Ms - b.p50Ms);
  /** Each process's median req/s, in start order. */
  const processRps = (ts: Target[]): number[] => ts.map((t) => median(t.runs.map((r) => r.rps)));
  const perProcess = (ts: Target[]): string => processRps(ts).map(fmtInt).join(', ');
  const summaryRows = (rows: [string, Summary][]): string[][] =>
    rows.map(([name, sum]) => [name, String(sum.runs), fmtInt(sum.rps), fmt(sum.p50Ms, 3), fmt(sum.p99Ms, 3), fmt(100 * sum.cpuShare, 0), fmt(sum.cpuUsPerReq, 0)]);
  const SUMMARY_HEADER = ['runs', 'req/s', 'p50 ms', 'p99 ms', 'CPU %', 'CPU us/req'];
  const cpuRatio = proxyS.cpuUsPerReq / bareS.cpuUsPerReq;

  say();
  say(
    table(['target', ...SUMMARY_HEADER], summaryRows([
      ['direct (upstream)', directS],
      ['bare Node passthrough', bareS],
      ['hono+HPM passthrough', stackS],
      ['gitlab-scope-proxy', proxyS],
    ])),
  );
  say();
  say(`proxy req/s / bare req/s   = ${fmt(rpsRatio, 3)}   (target >= ${TARGETS.rpsRatio})   ${verdict(rpsRatio >= TARGETS.rpsRatio)}` +
    `   per pair: ${pairRatios.map((v) => fmt(v, 3)).join(', ')}`);
  say(`proxy p50 - bare p50       = ${fmt(addedP50, 3)} ms   (target < ${TARGETS.addedP50Ms} ms)   ${verdict(addedP50 < TARGETS.addedP50Ms)}` +
    `   per pair: ${pairAdded.map((v) => fmt(v, 3)).join(', ')} ms`);
  say(`hono+HPM req/s / bare req/s = ${fmt(stackS.rps / bareS.rps, 3)}   (the ceiling for any proxy on hono + @hono/node-server + http-proxy-middleware)` +
    `   per pair: ${pairs(stackTs, [bareT], rpsOf).map((v) => fmt(v, 3)).join(', ')}`);
  const stackRatio = proxyS.rps / stackS.rps;
  say(`proxy req/s / hono+HPM req/s = ${fmt(stackRatio, 3)}   (target >= ${TARGETS.stackRatio}: what the proxy's own work costs on its stack)   ${verdict(stackRatio >= TARGETS.stackRatio)}` +
    `   per pair: ${pairs(proxyTs, stackTs, rpsOf).map((v) => fmt(v, 3)).join(', ')}` +
    `   CPU per request: bare ${fmt(bareS.cpuUsPerReq, 0)} us, hono+HPM ${fmt(stackS.cpuUsPerReq, 0)} us, proxy ${fmt(proxyS.cpuUsPerReq, 0)} us`);
  if (settings.instances > 1) {
    say(`  req/s per process (median of its runs): hono+HPM ${perProcess(stackTs)}; gitlab-scope-proxy ${perProcess(proxyTs)}` +
      `   (the figures above are medians over all ${settings.instances} x ${settings.reps} runs of each)`);
  }
  say(`bare req/s / direct req/s  = ${fmt(bareS.rps / directS.rps, 3)}   (context: what any Node proxy hop costs here)`);
  if (Number.isFinite(cpuRatio)) {
    say(`CPU per request, bare / proxy = ${fmt(1 / cpuRatio, 3)}   (the req/s ratio measured in CPU time: robust to other load on the machine)`);
    const starved = Math.min(bareS.cpuShare, proxyS.cpuShare);
    if (placement && starved < 0.9) {
      say(`warning: a process under test used only ${fmt(100 * starved, 0)}% of its CPU while saturated with requests: something else ran on` +
        ` its CPU (or the load generator could not keep up), so the req/s figures above understate it; trust the CPU-per-request ratio`);
    }
  }
  say(`peak RSS under this load (VmHWM): gitlab-scope-proxy ${mib(loadPeak.proxy)}, bare ${mib(loadPeak.bare)}`);

  // -- Section 1b: latency at light load ---------------------------------------------------
  say();
  say(`== 1b. Latency at light load: same request, 1 connection (nothing queues: p50 = one request's time) ==`);
  const lightRuns: { bare: LoadResult[]; proxy: LoadResult[] } = { bare: [], proxy: [] };
  const lightDirect = await measure('direct (upstream), 1 conn', direct.url, direct.headers, light, upstream.proc.pid);
  progress(lightDirect);
  for (let rep = 0; rep < settings.reps; rep++) {
    for (const t of [bareT, proxyTs[rep % settings.instances]!]) {
      const r = await measure(`${t.label}, 1 conn #${rep + 1}`, t.url, t.headers, light, t.pid);
      lightRuns[t.group as 'bare' | 'proxy'].push(r);
      t.answered += r.requests;
      progress(r);
    }
  }
  const lightBare = summarize(lightRuns.bare);
  const lightProxy = summarize(lightRuns.proxy);
  const lightAdded = lightProxy.p50Ms - lightBare.p50Ms;
  const lightPairAdded = lightRuns.proxy.map((r, i) => r.p50Ms - lightRuns.bare[i]!.p50Ms);
  say();
  say(
    table(['target (1 connection)', ...SUMMARY_HEADER], summaryRows([
      ['direct (upstream)', summarize([lightDirect])],
      ['bare Node passthrough', lightBare],
      ['gitlab-scope-proxy', lightProxy],
    ])),
  );
  say();
  say(`proxy p50 - bare p50, 1 connection = ${fmt(lightAdded, 3)} ms   (target < ${TARGETS.addedP50Ms} ms)   ${verdict(lightAdded < TARGETS.addedP50Ms)}` +
    `   per pair: ${lightPairAdded.map((v) => fmt(v, 3)).join(', ')} ms`);

  // Every proxied request must have left one audit line (the proxy flushes on close).
  for (const c of [...proxies, large, bare]) await c.stop();
  const auditOn = settings.audit !== 'off' && !settings.aa;
  const audited = [...proxyTs, largeT];
  let auditLines = 0;
  let auditBytes = 0;
  for (const t of auditOn ? audited : []) {
    const file = join(tmp, t.audit!);
    const lines = await countLines(file);
    auditLines += lines;
    auditBytes += statSync(file).size;
    if (lines < t.answered) problems.push(`${t.label}: audit log has ${lines} lines for ${t.answered} requests`);
  }
  const answeredAll = audited.reduce((n, t) => n + t.answered, 0);
  say();
  if (auditOn) {
    say(`audit logs (${settings.audit}): ${fmtInt(auditLines)} lines, ${mib(auditBytes)} (${fmt(auditBytes / Math.max(auditLines, 1), 0)} B/line), for ${fmtInt(answeredAll)} completed requests` +
      ` to ${audited.length} proxy processes (requests cut off at the end of a run are audited too, as aborted)`);
  } else if (settings.aa) {
    say('audit log: none (BENCH_AA=1: the places of gitlab-scope-proxy ran the hono+HPM passthrough)');
  } else {
    say('audit log: off (BENCH_AUDIT=off): lines were built and discarded; figures do not include writing them');
  }

  report.throughput = {
    path: BENCH_PATH,
    direct: directRun,
    runs,
    medians: { direct: directS, bare: bareS, stack: stackS, proxy: proxyS },
    stackOverBare: stackS.rps / bareS.rps,
    proxyOverStack: { value: stackRatio, target: TARGETS.stackRatio, pass: stackRatio >= TARGETS.stackRatio },
    fixedRate: { rate: fixed.rate, direct: directFixed, runs: fixedRuns, addedP99Ms: { value: fixedAddedP99, target: TARGETS.fixedRateAddedP99Ms, pass: fixedAddedP99 < TARGETS.fixedRateAddedP99Ms }, slicePairsP99Ms: slicePairs, sliceMedianAddedP99Ms: sliceAddedP99 },
    rpsRatio: { value: rpsRatio, target: TARGETS.rpsRatio, pass: rpsRatio >= TARGETS.rpsRatio, perPair: pairRatios },
    addedP50Ms: { value: addedP50, target: TARGETS.addedP50Ms, pass: addedP50 < TARGETS.addedP50Ms, perPair: pairAdded },
    cpuPerRequestBareOverProxy: 1 / cpuRatio,
    peakRssUnderLoad: loadPeak,
    perProcessRps: { stack: processRps(stackTs), proxy: processRps(proxyTs) },
    audit: { lines: auditLines, bytes: auditBytes, completedRequests: answeredAll },
  };
  report.lightLoad = {
    connections: 1,
    direct: lightDirect,
    runs: lightRuns,
    medians: { bare: lightBare, proxy: lightProxy },
    addedP50Ms: { value: lightAdded, target: TARGETS.addedP50Ms, pass: lightAdded < TARGETS.addedP50Ms, perPair: lightPairAdded },
  };

  // -- Section 2: streaming a large response ---------------------------------------------
  say();
  say(`== 2. Streaming: GET ${ARCHIVE_PATH}?bytes=${settings.streamBytes} (${mib(settings.streamBytes)}), fresh processes ==`);
  const sProxy = await startChild('gitlab-scope-proxy (stream)', CHILD_SCRIPT, proxyEnv(upstream.url, smallDir, 'audit-stream.log'), childOpts('proxy-stream'));
  const sBare = await startChild('bare proxy (stream)', CHILD_SCRIPT, bareEnv(upstream.url), childOpts('bare-stream'));
  const rows: string[][] = [];

  const directStream = await stream('direct', upstream.url, { 'private-token': realToken }, settings.streamBytes);
  rows.push(['direct (upstream)', fmt(directStream.mbPerS, 0), '-', '-', '-', '-']);

  const measured = async (child: Child, label: string, pause?: { after: number; ms: number }): Promise<{ s: StreamResult; before: ChildReply; after: ChildReply }> => {
    const before = await child.call('mem-start');
    const s = await stream(label, child.url, { 'private-token': smallJwt }, settings.streamBytes, pause);
    const after = await child.call('mem-stop');
    return { s, before, after };
  };
  const pause = { after: Math.min(32 * MiB, Math.floor(settings.streamBytes / 4)), ms: settings.pauseMs };
  const results = {
    bare: await measured(sBare, 'bare'),
    proxy: await measured(sProxy, 'gitlab-scope-proxy'),
    proxySlowReader: await measured(sProxy, 'gitlab-scope-proxy, slow reader', pause),
  };
  for (const [name, r] of [
    ['bare Node passthrough', results.bare],
    ['gitlab-scope-proxy', results.proxy],
    [`scope-proxy, reader pauses ${pause.ms / 1000} s`, results.proxySlowReader],
  ] as const) {
    const ab = r.after.atPeak?.arrayBuffers;
    rows.push([name, r.s.pausedMs ? `(${fmt(r.s.mbPerS, 0)})` : fmt(r.s.mbPerS, 0), mib(r.before.rss), mib(r.after.peakRss), mib(ab), mib(r.after.vmHwm)]);
  }
  say(table(['target', 'MB/s', 'RSS before', 'peak RSS (20 ms samples)', 'ArrayBuffers at peak', 'VmHWM (peak since start of run)'], rows));
  const proxyPeak = Math.max(
    results.proxy.after.vmHwm ?? 0, results.proxy.after.peakRss,
    results.proxySlowReader.after.vmHwm ?? 0, results.proxySlowReader.after.peakRss,
  );
  say();
  say(`gitlab-scope-proxy peak RSS while streaming = ${mib(proxyPeak)} = ${mb(proxyPeak)}   (target < ${mb(TARGETS.peakRssBytes)})   ${verdict(proxyPeak < TARGETS.peakRssBytes)}`);
  say(`  growth over its idle RSS: ${mib(proxyPeak - results.proxy.before.rss)}; bare Node passthrough: idle ${mib(results.bare.before.rss)}, growth ${mib(results.bare.after.peakRss - results.bare.before.rss)}`);
  say(`gitlab-scope-proxy throughput = ${fmt(results.proxy.s.mbPerS, 0)} MB/s (bare: ${fmt(results.bare.s.mbPerS, 0)} MB/s, direct: ${fmt(directStream.mbPerS, 0)} MB/s)`);
  await sProxy.stop();
  await sBare.stop();
  report.streaming = {
    bytes: settings.streamBytes,
    direct: directStream,
    ...results,
    peakRss: { value: proxyPeak, target: TARGETS.peakRssBytes, pass: proxyPeak < TARGETS.peakRssBytes },
  };

  // -- Section 3: large policy -----------------------------------------------------------
  say();
  say(`== 3. Large policy: ${fmtInt(LARGE_CLIENTS)} clients x ${LARGE_RULES_PER_CLIENT} rules = ${fmtInt(LARGE_CLIENTS * LARGE_RULES_PER_CLIENT)} rules ==`);
  const largeBytes = largeSources.reduce((n, s) => n + Buffer.byteLength(s.text), 0);
  const time = (fn: () => unknown, n = 3): number[] => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      fn();
      out.push(performance.now() - start);
    }
    return out;
  };
  const compileOne = time(() => compilePolicy(largeSources));
  const tenFiles = largePolicy(LARGE_CLIENTS, 10);
  const compileTen = time(() => compilePolicy(tenFiles));
  const loadDir = time(() => loadPolicyDir(largeDir, tmp));
  const compileSmall = time(() => compilePolicy([{ display: 'policies/bench.yaml', text: smallPolicy() }]));
  const loaded = loadPolicyDir(largeDir, tmp);
  if (loaded.clients.size !== LARGE_CLIENTS) problems.push(`large policy compiled to ${loaded.clients.size} clients`);
  const largeRatio = largeS.rps / proxyS.rps;
  const largePairs = pairs([largeT], [proxyTs.at(-1)!], rpsOf);
  const largeAdded = largeS.p50Ms - proxyS.p50Ms;
  say(`policy text: ${mib(largeBytes)} of YAML in one file (timed here, in the load generator's process)`);
  say(
    table(['step', 'median ms', 'runs (ms)'], ([
      ['compilePolicy, 1 file x 1,000 clients', compileOne],
      ['compilePolicy, 10 files x 100 clients', compileTen],
      ['loadPolicyDir (read + compile, 1 file)', loadDir],
      ['compilePolicy, small policy (1 client)', compileSmall],
    ] as [string, number[]][]).map(([name, ms]) => [name, fmt(median(ms), 1), ms.map((v) => fmt(v, 1)).join(', ')])),
  );
  say();
  say(
    table(['proxy process', 'start to listening (incl. module load)', 'RSS at start', 'heap after GC', 'peak RSS (VmHWM)'], [
      ['small policy', `${fmt(proxy.ready.startMs ?? NaN, 0)} ms`, mib(proxy.ready.rss), mib(proxy.ready.heapAfterGc), mib(loadPeak.proxy)],
      ['large policy', `${fmt(large.ready.startMs ?? NaN, 0)} ms`, mib(large.ready.rss), mib(large.ready.heapAfterGc), mib(loadPeak.large)],
    ]),
  );
  say();
  say(
    table(['policy', ...SUMMARY_HEADER], summaryRows([
      ['small (1 client)', proxyS],
      [`large (as ${largeBenchClient})`, largeS],
    ])),
  );
  say();
  say(`large req/s / small req/s  = ${fmt(largeRatio, 3)}   (no target; 1.0 = policy size costs nothing per request)` +
    `   per run, against the small-policy process measured just before it: ${largePairs.map((v) => fmt(v, 3)).join(', ')}`);
  say(`large p50 - small p50      = ${fmt(largeAdded, 3)} ms`);
  say(`CPU per request, large / small = ${fmt(largeS.cpuUsPerReq / proxyS.cpuUsPerReq, 3)}`);
  report.largePolicy = {
    clients: LARGE_CLIENTS,
    rulesPerClient: LARGE_RULES_PER_CLIENT,
    yamlBytes: largeBytes,
    compileOneFileMs: compileOne,
    compileTenFilesMs: compileTen,
    loadPolicyDirMs: loadDir,
    compileSmallMs: compileSmall,
    startMs: { small: proxy.ready.startMs, large: large.ready.startMs },
    rssAtStart: { small: proxy.ready.rss, large: large.ready.rss },
    heapAfterGc: { small: proxy.ready.heapAfterGc, large: large.ready.heapAfterGc },
    medians: { small: proxyS, large: largeS },
    rpsRatio: largeRatio,
    cpuPerRequestLargeOverSmall: largeS.cpuUsPerReq / proxyS.cpuUsPerReq,
    perRunRatios: largePairs,
    addedP50Ms: largeAdded,
  };

  await upstream.stop();
} catch (err) {
  problems.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
} finally {
  killAll();
}

const totalS = (performance.now() - t0) / 1000;
say();
const sourceAtEnd = sourceFingerprint();
if (sourceAtEnd.srcSha256 !== source.srcSha256) {
  say(`note: src/ changed on disk during the run (sha256 ${source.srcSha256.slice(0, 12)} -> ${sourceAtEnd.srcSha256.slice(0, 12)}): processes started after the change ran the new code`);
}
if (problems.length > 0) {
  exitCode = 1;
  say('ERRORS (the figures above are not valid):');
  for (const p of problems) say(`  - ${p}`);
}
say(`done in ${fmt(totalS, 1)} s (load average now ${loadavg().map((l) => fmt(l)).join(' ')})`);

mkdirSync(OUT_DIR, { recursive: true });
const outFile = join(OUT_DIR, 'latest.json');
writeFileSync(
  outFile,
  JSON.stringify(
    {
      startedAt: startedAt.toISOString(),
      totalSeconds: totalS,
      source: { ...source, srcSha256AtEnd: sourceAtEnd.srcSha256 },
      environment: { node: process.version, platform: process.platform, arch: process.arch, cpus: cpus().length, cpuModel: cpus()[0]?.model, totalMemBytes: totalmem(), loadavgAtEnd: loadavg() },
      settings: { ...settings, light, placement: placement ?? null },
      targets: TARGETS,
      ...report,
      problems,
    },
    // Raw latencies (fixed-rate runs) are for the percentiles above, not for the file.
    (key, value: unknown) => (key === 'latenciesMs' ? undefined : value),
    2,
  ) + '\n',
);
say(`results: ${outFile}`);
rmSync(tmp, { recursive: true, force: true });
process.exit(exitCode);
