// A/B comparison of gitlab-scope-proxy builds, for performance work (not part of `npm run bench`):
//
//   BENCH_AB_ROOTS=/tmp/base,/work/main npx node bench/ab.ts
//
// Each root is a checkout (or a copy of src/ and bench/ with node_modules linked in), optionally
// followed by Node flags after a '|' ("/work/main|--max-semi-space-size=1"). One
// proxy per root is started from that root's bench/proxy-child.ts, next to the bare
// passthrough and the hono+HPM one, all pinned to the same CPU; then the targets take turns (bare, hono+HPM, A, B, ...)
// for BENCH_AB_REPS rounds of BENCH_AB_SECONDS each at 50 connections, and the median CPU
// microseconds per request of each is printed. CPU time per request is what compares well
// on a shared machine; req/s is printed for reference only.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mintToken } from '../src/auth/mint.ts';
import { canPin, killAll, pinToCpus, procCpuSeconds, startChild, type Child } from './lib/children.ts';
import { runLoad } from './lib/load.ts';
import { BENCH_CLIENT, BENCH_PATH, smallPolicy } from './lib/policy.ts';
import { fmt, fmtInt, median } from './lib/stats.ts';

const roots = (process.env.BENCH_AB_ROOTS ?? '').split(',').filter(Boolean);
if (roots.length === 0) {
  console.error('set BENCH_AB_ROOTS to a comma-separated list of checkouts');
  process.exit(2);
}
const reps = Number(process.env.BENCH_AB_REPS ?? 5);
const seconds = Number(process.env.BENCH_AB_SECONDS ?? 4);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const pin = canPin() && process.env.BENCH_PIN !== '0';

const tmp = mkdtempSync(join(tmpdir(), 'gsp-ab-'));
const realToken = `glpat-${randomBytes(12).toString('hex')}`;
const jwtSecret = randomBytes(32).toString('hex');
const policyDir = join(tmp, 'policy');
mkdirSync(policyDir);
writeFileSync(join(policyDir, 'bench.yaml'), smallPolicy());
const jwt = await mintToken({ client: BENCH_CLIENT, audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 3600, key: { kind: 'secret', secret: new TextEncoder().encode(jwtSecret) } });

try {
  if (pin) pinToCpus(process.pid, '0');
  const here = new URL('.', import.meta.url);
  const upstream = await startChild('upstream', new URL('upstream.ts', here), { BENCH_ROLE: 'upstream', BENCH_UPSTREAM_TOKEN: realToken }, pin ? { cpus: '0' } : {});
  const cpus = pin ? { cpus: '1' } : {};
  const targets: { label: string; child: Child; cpu: number[]; rps: number[] }[] = [];
  const bare = await startChild('bare', new URL('proxy-child.ts', here), { BENCH_ROLE: 'bare', BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_TOKEN: realToken }, cpus);
  targets.push({ label: 'bare', child: bare, cpu: [], rps: [] });
  // The stack's own passthrough (hono + @hono/node-server + http-proxy-middleware): issue 12's baseline.
  const stack = await startChild('stack', new URL('proxy-child.ts', here), { BENCH_ROLE: 'stack', BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_TOKEN: realToken }, cpus);
  targets.push({ label: 'hono+HPM', child: stack, cpu: [], rps: [] });
  for (const [i, spec] of roots.entries()) {
    const [root = '', flags = ''] = spec.split('|');
    const script = pathToFileURL(join(root, 'bench', 'proxy-child.ts'));
    const child = await startChild(spec, script, {
      BENCH_ROLE: 'proxy', BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_TOKEN: realToken, BENCH_JWT_SECRET: jwtSecret,
      BENCH_POLICY_DIR: policyDir, BENCH_AUDIT_LOG: join(tmp, `audit-${i}.log`), BENCH_CODE: 'src',
    }, { ...cpus, execArgv: flags.split(/\s+/).filter(Boolean) });
    targets.push({ label: spec, child, cpu: [], rps: [] });
  }
  const headers = { 'private-token': jwt };
  for (const t of targets) await runLoad('warm', t.child.url + BENCH_PATH, headers, { connections, pipelining: 1, duration: 2 });
  for (let r = 0; r < reps; r++) {
    for (const t of targets) {
      const c0 = procCpuSeconds(t.child.proc.pid)!;
      const res = await runLoad(t.label, t.child.url + BENCH_PATH, headers, { connections, pipelining: 1, duration: seconds });
      const c1 = procCpuSeconds(t.child.proc.pid)!;
      if (res.non2xx || res.errors) throw new Error(`${t.label}: ${res.non2xx} non-2xx, ${res.errors} errors`);
      t.cpu.push(((c1 - c0) * 1e6) / res.requests);
      t.rps.push(res.rps);
    }
    console.log(`round ${r + 1}: ${targets.map((t) => `${t.label} ${fmt(t.cpu.at(-1)!, 0)} us`).join(', ')}`);
  }
  const bareCpu = median(targets[0]!.cpu);
  const stackCpu = median(targets[1]!.cpu);
  for (const t of targets) {
    const cpu = median(t.cpu);
    console.log(`${t.label.padEnd(28)} CPU ${fmt(cpu, 1)} us/req  req/s ${fmtInt(median(t.rps))}  bare/this ${fmt(bareCpu / cpu, 3)}  hono+HPM/this ${fmt(stackCpu / cpu, 3)}`);
  }
  // Each round's ratio to the first root, then the median: adjacent runs share the machine's
  // state, so a ratio per round is steadier than a ratio of medians on a noisy machine.
  const first = targets[2]!;
  for (const t of targets.slice(3)) {
    const ratios = t.cpu.map((c, i) => c / first.cpu[i]!);
    console.log(`${t.label} / ${first.label}: median per-round CPU ratio ${fmt(median(ratios), 3)} (${ratios.map((r) => fmt(r, 2)).join(' ')})`);
  }
  for (const t of targets) await t.child.stop();
  await upstream.stop();
} finally {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
}
