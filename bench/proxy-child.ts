// The process under test, forked by run.ts so the load generator (in the parent) and the
// upstream (a third process) do not share its event loop. BENCH_ROLE picks what it runs:
//   proxy: gitlab-scope-proxy via startProxy, audit log to a file (as in production)
//   bare:  the bare Node passthrough (bare-proxy.ts)
//   stack: hono + @hono/node-server + http-proxy-middleware, nothing else (stack-proxy.ts)
// It talks to the parent over IPC: "ready" with its URL once listening, then answers
// mem-start / mem-stop (peak RSS sampled every 20 ms in between) and close.
// Modules are imported per role, so the bare proxy's memory figures do not include the
// proxy's dependencies.
import { readFileSync, writeFileSync } from 'node:fs';
import type { ChildReply, ChildRequest } from './lib/children.ts';

const SAMPLE_MS = 20;

function need(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

/** Peak resident set size of this process so far (Linux VmHWM), in bytes. */
/** Linux: "5" in clear_refs resets the peak RSS (VmHWM) to the current RSS, so that the peak
 *  reported at mem-stop is the window's, not start-up's (proc(5)). */
function resetVmHwm(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Not Linux, or not allowed: VmHWM stays the lifetime peak.
  }
}

function vmHwm(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** BENCH_PROFILE=alloc: V8's sampling heap profiler, counting every sampled allocation, also
 *  those the garbage collector has already freed (what a request allocates, not what it keeps).
 *  Returns a function that writes the profile into `dir`. */
async function sampleAllocations(dir: string): Promise<() => Promise<void>> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    writeFileSync(`${dir}/${process.env.BENCH_ROLE}-${process.pid}.heapprofile`, JSON.stringify(profile));
    session.disconnect();
  };
}

async function main(): Promise<void> {
  const writeAllocations = process.env.BENCH_ALLOC_PROFILE ? await sampleAllocations(process.env.BENCH_ALLOC_PROFILE) : undefined;
  if (!process.send) throw new Error('proxy-child.ts is started by bench/run.ts (needs an IPC channel)');
  const role = need('BENCH_ROLE');
  const upstreamUrl = need('BENCH_UPSTREAM_URL');
  const token = need('BENCH_UPSTREAM_TOKEN');
  const started = performance.now();

  let url: string;
  let close: () => Promise<void>;
  if (role === 'bare' || role === 'stack') {
    const started = role === 'bare'
      ? await (await import('./bare-proxy.ts')).startBareProxy(upstreamUrl, token)
      : await (await import('./stack-proxy.ts')).startStackProxy(upstreamUrl, token);
    const addr = started.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    url = `http://127.0.0.1:${addr.port}`;
    close = started.close;
  } else if (role === 'proxy') {
    // BENCH_CODE=dist: the compiled JavaScript, as `npm start` and the image run it; src: the
    // TypeScript sources through Node's type stripping.
    // run.ts may start a JavaScript copy of this file from bench/out/: BENCH_REPO_URL says
    // where the checkout is.
    const repo = process.env.BENCH_REPO_URL ?? new URL('../', import.meta.url).href;
    const code = process.env.BENCH_CODE === 'src' ? { dir: 'src/', ext: '.ts' } : { dir: 'dist/', ext: '.js' };
    const load = <T>(path: string): Promise<T> => import(new URL(code.dir + path + code.ext, repo).href) as Promise<T>;
    const { auditLogTo, createAuditLog, createOpsLog } = await load<typeof import('../src/audit/audit.ts')>('audit/audit');
    const { loadConfig } = await load<typeof import('../src/config/env.ts')>('config/env');
    const { startProxy } = await load<typeof import('../src/server.ts')>('server');
    const config = loadConfig({
      GITLAB_URL: upstreamUrl,
      GITLAB_TOKEN: token,
      PROXY_JWT_SECRET: need('BENCH_JWT_SECRET'),
      POLICY_DIR: need('BENCH_POLICY_DIR'),
      AUDIT_LOG: need('BENCH_AUDIT_LOG'),
      PORT: '0',
      HOST: '127.0.0.1',
    });
    // Operational log as in production (stderr), at warn so only problems show.
    const ops = createOpsLog('warn');
    // BENCH_AUDIT picks how the audit log is written (see README):
    //   production (default): startProxy opens AUDIT_LOG itself, exactly as `serve` does;
    //   createAuditLog: the file is opened with createAuditLog() and handed to startProxy;
    //   off: lines are built and discarded (diagnostic: what writing them costs).
    const mode = process.env.BENCH_AUDIT || 'production';
    let audit;
    if (mode === 'createAuditLog') audit = createAuditLog(config.auditLog, (err) => ops.error({ err: err.message }, 'audit log write failed'));
    else if (mode === 'off') audit = auditLogTo({ write: () => undefined });
    else if (mode !== 'production') throw new Error(`BENCH_AUDIT must be production, createAuditLog or off, got ${mode}`);
    const proxy = await startProxy(config, audit ? { ops, audit } : { ops });
    // As `serve` does once the proxy is up (src/serve.ts).
    (await load<typeof import('../src/ops/gc.ts')>('ops/gc')).releaseStartupMemory();
    url = proxy.url;
    close = proxy.close;
  } else {
    throw new Error(`unknown BENCH_ROLE ${role}`);
  }
  const startMs = performance.now() - started;

  let peak = 0;
  let atPeak: NodeJS.MemoryUsage | undefined;
  let sampler: NodeJS.Timeout | undefined;
  const sample = (): void => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) {
      peak = rss;
      atPeak = process.memoryUsage();
    }
  };
  /** Heap in use after a full collection (the children run with --expose-gc). */
  const heapAfterGc = (): number | undefined => {
    if (!globalThis.gc) return undefined;
    globalThis.gc();
    return process.memoryUsage().heapUsed;
  };

  const reply = (msg: ChildReply): void => {
    process.send!(msg);
  };

  process.on('message', (raw: unknown) => {
    const msg = raw as ChildRequest;
    switch (msg.cmd) {
      case 'mem-start': {
        clearInterval(sampler);
        const heap = heapAfterGc();
        resetVmHwm();
        peak = 0;
        atPeak = undefined;
        sample();
        sampler = setInterval(sample, SAMPLE_MS);
        reply({ id: msg.id, rss: process.memoryUsage.rss(), peakRss: peak, vmHwm: vmHwm(), ...(heap !== undefined ? { heapAfterGc: heap } : {}) });
        break;
      }
      case 'mem-stop':
        sample();
        clearInterval(sampler);
        sampler = undefined;
        reply({ id: msg.id, rss: process.memoryUsage.rss(), peakRss: peak, vmHwm: vmHwm(), ...(atPeak ? { atPeak } : {}) });
        break;
      case 'close':
        clearInterval(sampler);
        void close().then(async () => {
          await writeAllocations?.();
          reply({ id: msg.id, rss: process.memoryUsage.rss(), peakRss: peak, vmHwm: vmHwm() });
          process.disconnect();
          // Exit normally (not by signal) so --cpu-prof can write its profile.
          setImmediate(() => process.exit(0));
        });
        break;
    }
  });
  // Never outlive the bench.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 1000).unref());

  const rssAtReady = process.memoryUsage.rss();
  const heap = heapAfterGc();
  reply({ id: 0, ready: true, url, startMs, rss: rssAtReady, peakRss: 0, vmHwm: vmHwm(), ...(heap !== undefined ? { heapAfterGc: heap } : {}) });
}

await main();
