// Instructions per request, counted by valgrind's callgrind: a figure that does not move with
// the machine's other work, for A/B comparisons of the hot path (not part of `npm run bench`).
//
//   BENCH_IR_ROOTS=/tmp/base,/work/main npx node bench/instructions.ts
//
// Each target (the hono+HPM passthrough, then one gitlab-scope-proxy per root, as in ab.ts) runs
// under `valgrind --tool=callgrind` with instrumentation off; it is warmed up, then counting is
// switched on (callgrind_control) for exactly BENCH_IR_REQUESTS requests over 10 keep-alive
// connections, and the instructions of all its threads (JIT code, garbage collector, libuv) are
// divided by that number. Needs valgrind (Debian's package). Instructions are not time (a cache
// miss costs more than an add), but a change that removes work shows here run after run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { abSetup } from './lib/ab-setup.ts';
import { killAll, startChild, type Child } from './lib/children.ts';
import { BENCH_PATH } from './lib/policy.ts';
import { fmt } from './lib/stats.ts';

const roots = (process.env.BENCH_IR_ROOTS ?? '').split(',').filter(Boolean);
if (roots.length === 0) {
  console.error('set BENCH_IR_ROOTS to a comma-separated list of checkouts');
  process.exit(2);
}
const requests = Number(process.env.BENCH_IR_REQUESTS ?? 2000);
const warmup = Number(process.env.BENCH_IR_WARMUP ?? 4000);
// V8 compiles optimized code on background threads, which valgrind runs one at a time and
// slowly: the code a process runs after a given warm-up depends on scheduling, and takes long
// to settle (the passthrough measured 688, 479 and 398 thousand after 4,000, 8,000 and 16,000
// requests; --single-threaded, 819 and 713 thousand after 4,000 and 12,000). Extra Node flags
// for the targets: BENCH_IR_NODE_FLAGS.
const nodeFlags = (process.env.BENCH_IR_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
const CONCURRENCY = 10;
// BENCH_IR_CACHE=1: callgrind also simulates the caches (first-level and last-level misses
// per request, for data and instructions), which time depends on and instruction counts miss.
const cacheSim = process.env.BENCH_IR_CACHE === '1';
const EVENTS = cacheSim ? ['Ir', 'I1mr', 'ILmr', 'Dr', 'Dw', 'D1mr', 'D1mw', 'DLmr', 'DLmw'] : ['Ir'];

const { tmp, realToken, jwtSecret, policyDir, jwt } = await abSetup('gsp-ir-');

/** `n` GETs over CONCURRENCY keep-alive connections; every answer must be a 200. */
async function send(url: string, n: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = request(url, { agent, headers: { 'private-token': jwt } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: status ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < n) await one();
  }));
  agent.destroy();
}

const control = (pid: number, ...args: string[]): string => execFileSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' });

/** Per request: each of EVENTS, summed over the threads' files of the one dump. */
async function measure(label: string, child: Child, outDir: string): Promise<Record<string, number>> {
  const url = child.url + BENCH_PATH;
  await send(url, warmup);
  const pid = child.proc.pid!;
  control(pid, '--instr=on');
  control(pid, '--zero');
  await send(url, requests);
  control(pid, '--dump');
  control(pid, '--instr=off');
  // One dump file per thread and dump: sum the totals of this dump's files, by the events
  // line's names.
  const sums: Record<string, number> = {};
  for (const f of readdirSync(outDir)) {
    if (!f.includes(`.${pid}.1`)) continue;
    const text = readFileSync(join(outDir, f), 'utf8');
    const names = /^events: (.+)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
    const values = /^(?:summary|totals): (.+)$/m.exec(text)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
    names.forEach((name, i) => (sums[name] = (sums[name] ?? 0) + (values[i] ?? 0)));
  }
  if (!sums.Ir) throw new Error(`${label}: no callgrind totals in ${outDir}`);
  return Object.fromEntries(EVENTS.map((e) => [e, (sums[e] ?? 0) / requests]));
}

try {
  const here = new URL('.', import.meta.url);
  const upstream = await startChild('upstream', new URL('upstream.ts', here), { BENCH_ROLE: 'upstream', BENCH_UPSTREAM_TOKEN: realToken });
  const targets: { label: string; script: URL; env: Record<string, string> }[] = [
    { label: 'hono+HPM', script: new URL('proxy-child.ts', here), env: { BENCH_ROLE: 'stack', BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_TOKEN: realToken } },
    ...roots.map((root, i) => ({
      label: root,
      script: pathToFileURL(join(root, 'bench', 'proxy-child.ts')),
      env: {
        BENCH_ROLE: 'proxy', BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_TOKEN: realToken, BENCH_JWT_SECRET: jwtSecret,
        BENCH_POLICY_DIR: policyDir, BENCH_AUDIT_LOG: join(tmp, `audit-${i}.log`), BENCH_CODE: 'src',
      },
    })),
  ];
  const results: { label: string; ir: number; events: Record<string, number> }[] = [];
  for (const [i, t] of targets.entries()) {
    const outDir = join(tmp, `cg-${i}`);
    mkdirSync(outDir);
    const child = await startChild(t.label, t.script, t.env, {
      execPath: 'valgrind',
      execArgv: ['--tool=callgrind', ...(cacheSim ? ['--cache-sim=yes'] : []), '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${outDir}/cg.%p`, process.execPath, '--expose-gc', ...nodeFlags],
      readyTimeoutMs: 300_000,
    });
    const events = await measure(t.label, child, outDir);
    const ir = events.Ir!;
    results.push({ label: t.label, ir, events });
    console.log(`${t.label.padEnd(28)} ${fmt(ir / 1000, 1)} thousand instructions per request`);
    if (cacheSim) console.log(`${''.padEnd(28)} per request: ${EVENTS.slice(1).map((e) => `${e} ${fmt(events[e]!, 0)}`).join(', ')}`);
    await child.stop().catch(() => child.kill());
  }
  const stack = results[0]!.ir;
  for (const r of results.slice(1)) console.log(`${r.label}: hono+HPM / this ${fmt(stack / r.ir, 3)}; ${r.label} / ${results[1]!.label} ${fmt(r.ir / results[1]!.ir, 3)}`);
  if (cacheSim) {
    for (const r of results.slice(1)) console.log(`${r.label} / hono+HPM, per event: ${EVENTS.map((e) => `${e} ${fmt(r.events[e]! / results[0]!.events[e]!, 2)}`).join(', ')}`);
  }
  await upstream.stop();
} finally {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
}
