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
const CONCURRENCY = 10;

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

async function measure(label: string, child: Child, outDir: string): Promise<number> {
  const url = child.url + BENCH_PATH;
  await send(url, warmup);
  const pid = child.proc.pid!;
  control(pid, '--instr=on');
  control(pid, '--zero');
  await send(url, requests);
  control(pid, '--dump');
  control(pid, '--instr=off');
  // One dump file per thread and dump: sum the totals of this dump's files.
  let total = 0;
  for (const f of readdirSync(outDir)) {
    if (!f.includes(`.${pid}.1`)) continue;
    const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(join(outDir, f), 'utf8'));
    if (m) total += Number(m[1]);
  }
  if (total === 0) throw new Error(`${label}: no callgrind totals in ${outDir}`);
  return total / requests;
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
  const results: { label: string; ir: number }[] = [];
  for (const [i, t] of targets.entries()) {
    const outDir = join(tmp, `cg-${i}`);
    mkdirSync(outDir);
    const child = await startChild(t.label, t.script, t.env, {
      execPath: 'valgrind',
      execArgv: ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${outDir}/cg.%p`, process.execPath, '--expose-gc'],
      readyTimeoutMs: 300_000,
    });
    const ir = await measure(t.label, child, outDir);
    results.push({ label: t.label, ir });
    console.log(`${t.label.padEnd(28)} ${fmt(ir / 1000, 1)} thousand instructions per request`);
    await child.stop().catch(() => child.kill());
  }
  const stack = results[0]!.ir;
  for (const r of results.slice(1)) console.log(`${r.label}: hono+HPM / this ${fmt(stack / r.ir, 3)}; ${r.label} / ${results[1]!.label} ${fmt(r.ir / results[1]!.ir, 3)}`);
  await upstream.stop();
} finally {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
}
