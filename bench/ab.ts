// A/B comparison of gitlab-scope-proxy builds, for performance work (not part of `npm run bench`):
//
//   BENCH_AB_ROOTS=/tmp/base,/work/main npx node bench/ab.ts
//
// Each root is a checkout (or a copy of src/ and bench/ with node_modules linked in), optionally
// followed by Node flags after a '|' ("/work/main|--max-semi-space-size=1"). One
// proxy per root (BENCH_AB_INSTANCES: that many) is started from that root's bench/proxy-child.ts, next to the bare
// passthrough and the hono+HPM one, all pinned to the same CPU; then the targets take turns (bare, hono+HPM, A, B, ...)
// for BENCH_AB_REPS rounds of BENCH_AB_SECONDS each at 50 connections, and the median CPU
// microseconds per request of each is printed. CPU time per request is what compares well
// on a shared machine; req/s is printed for reference only.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { abSetup } from './lib/ab-setup.ts';
import { canPin, killAll, pinToCpus, procCpuSeconds, startChild, type Child } from './lib/children.ts';
import { runLoad } from './lib/load.ts';
import { BENCH_PATH } from './lib/policy.ts';
import { fmt, fmtInt, median } from './lib/stats.ts';

const roots = (process.env.BENCH_AB_ROOTS ?? '').split(',').filter(Boolean);
if (roots.length === 0) {
  console.error('set BENCH_AB_ROOTS to a comma-separated list of checkouts');
  process.exit(2);
}
const reps = Number(process.env.BENCH_AB_REPS ?? 5);
// Processes per target. One process can run 10 % faster or slower than another of the same
// code for its whole life (where the JIT and the allocator put things); with several, each
// round's figure for a target is the mean over its processes.
const instances = Math.max(1, Number(process.env.BENCH_AB_INSTANCES ?? 1));
const seconds = Number(process.env.BENCH_AB_SECONDS ?? 4);
// The proxy's code reaches its optimized steady state only after about 20 s of load here
// (V8 --trace-opt: Turbofan versions of the request path still being made 15 s in).
const warmup = Number(process.env.BENCH_AB_WARMUP ?? 20);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const pin = canPin() && process.env.BENCH_PIN !== '0';

const { tmp, realToken, jwtSecret, policyDir, jwt } = await abSetup('gsp-ab-');

try {
  if (pin) pinToCpus(process.pid, '0');
  const here = new URL('.', import.meta.url);
  const upstream = await startChild('upstream', new URL('upstream.ts', here), { BENCH_ROLE: 'upstream', BENCH_UPSTREAM_TOKEN: realToken }, pin ? { cpus: '0' } : {});
  const cpus = pin ? { cpus: '1' } : {};
  const targets: { label: string; children: Child[]; cpu: number[]; rps: number[]; perChild: number[][] }[] = [];
  const start = async (label: string, script: URL, env: Record<string, string>, execArgv: string[] = []): Promise<void> => {
    const children: Child[] = [];
    for (let n = 0; n < instances; n++) children.push(await startChild(`${label} #${n + 1}`, script, { ...env, BENCH_AUDIT_LOG: join(tmp, `audit-${targets.length}-${n}.log`) }, { ...cpus, execArgv }));
    targets.push({ label, children, cpu: [], rps: [], perChild: children.map(() => []) });
  };
  const childScript = new URL('proxy-child.ts', here);
  // The stack's own passthrough (hono + @hono/node-server + http-proxy-middleware): issue 12's baseline.
  // BENCH_AB_STACK_FLAGS: Node flags for the two passthroughs (e.g. --trace-gc, to compare with a root's).
  const stackFlags = (process.env.BENCH_AB_STACK_FLAGS ?? '').split(/\s+/).filter(Boolean);
  await start('bare', childScript, { BENCH_ROLE: 'bare', BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_TOKEN: realToken }, stackFlags);
  await start('hono+HPM', childScript, { BENCH_ROLE: 'stack', BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_TOKEN: realToken }, stackFlags);
  for (const spec of roots) {
    const [root = '', flags = ''] = spec.split('|');
    await start(spec, pathToFileURL(join(root, 'bench', 'proxy-child.ts')), {
      BENCH_ROLE: 'proxy', BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_TOKEN: realToken, BENCH_JWT_SECRET: jwtSecret,
      BENCH_POLICY_DIR: policyDir, BENCH_CODE: process.env.BENCH_CODE ?? 'src',
    }, flags.split(/\s+/).filter(Boolean));
  }
  const headers = { 'private-token': jwt };
  for (const t of targets) for (const child of t.children) await runLoad('warm', child.url + BENCH_PATH, headers, { connections, pipelining: 1, duration: warmup });
  for (let r = 0; r < reps; r++) {
    for (const t of targets) {
      let cpu = 0;
      let rps = 0;
      for (const [n, child] of t.children.entries()) {
        const c0 = procCpuSeconds(child.proc.pid)!;
        const res = await runLoad(t.label, child.url + BENCH_PATH, headers, { connections, pipelining: 1, duration: seconds });
        const c1 = procCpuSeconds(child.proc.pid)!;
        if (res.non2xx || res.errors) throw new Error(`${t.label}: ${res.non2xx} non-2xx, ${res.errors} errors`);
        t.perChild[n]!.push(((c1 - c0) * 1e6) / res.requests);
        cpu += ((c1 - c0) * 1e6) / res.requests / t.children.length;
        rps += res.rps / t.children.length;
      }
      t.cpu.push(cpu);
      t.rps.push(rps);
    }
    console.log(`round ${r + 1}: ${targets.map((t) => `${t.label} ${fmt(t.cpu.at(-1)!, 0)} us`).join(', ')}`);
  }
  const bareCpu = median(targets[0]!.cpu);
  const stackCpu = median(targets[1]!.cpu);
  for (const t of targets) {
    const cpu = median(t.cpu);
    console.log(`${t.label.padEnd(28)} CPU ${fmt(cpu, 1)} us/req  req/s ${fmtInt(median(t.rps))}  bare/this ${fmt(bareCpu / cpu, 3)}  hono+HPM/this ${fmt(stackCpu / cpu, 3)}` +
      (t.children.length > 1 ? `  per process (in start order): ${t.perChild.map((c) => fmt(median(c), 0)).join(', ')} us` : ''));
  }
  // Each round's ratio to the first root, then the median: adjacent runs share the machine's
  // state, so a ratio per round is steadier than a ratio of medians on a noisy machine.
  const first = targets[2]!;
  for (const t of targets.slice(3)) {
    const ratios = t.cpu.map((c, i) => c / first.cpu[i]!);
    console.log(`${t.label} / ${first.label}: median per-round CPU ratio ${fmt(median(ratios), 3)} (${ratios.map((r) => fmt(r, 2)).join(' ')})`);
  }
  for (const t of targets) for (const child of t.children) await child.stop();
  await upstream.stop();
} finally {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
}
