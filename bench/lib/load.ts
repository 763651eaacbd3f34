// One autocannon run, in this process. Latency percentiles are computed from every
// response's own time (autocannon's 'response' event, float milliseconds from hrtime):
// autocannon's histogram stores whole milliseconds, too coarse for a sub-millisecond budget.
import autocannon from 'autocannon';
import { runPacedLoad } from './paced-load.ts';
import { percentile, Samples } from './stats.ts';

export interface LoadSettings {
  connections: number;
  pipelining: number;
  /** Seconds. */
  duration: number;
  /** Requests per second over all connections, evenly spaced (a fixed-rate load,
   *  bench/lib/paced-load.ts); unset: as fast as possible. */
  rate?: number;
}

export interface LoadResult {
  label: string;
  url: string;
  durationS: number;
  requests: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Everything that makes the run invalid: connection errors, timeouts, non-2xx, mismatches. */
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  firstError: string | undefined;
  /** CPU the process under test used during the run, as a share of one CPU (1 = 100 %). */
  cpuShare?: number;
  /** CPU time of the process under test per completed request, in microseconds. */
  cpuUsPerReq?: number;
  /** Every 2xx response's latency, sorted (fixed-rate runs only: for mergeRuns). */
  latenciesMs?: Float64Array;
}

/** One result for several runs against the same target: latencies pooled, percentiles taken
 *  over the pool, counts summed, CPU figures weighted by each run's requests and duration. */
export function mergeRuns(label: string, runs: LoadResult[]): LoadResult {
  const pool = new Float64Array(runs.reduce((n, r) => n + (r.latenciesMs?.length ?? 0), 0));
  let at = 0;
  for (const r of runs) {
    if (!r.latenciesMs) throw new Error(`${r.label}: no latencies to merge`);
    pool.set(r.latenciesMs, at);
    at += r.latenciesMs.length;
  }
  pool.sort();
  const sum = (f: (r: LoadResult) => number): number => runs.reduce((n, r) => n + f(r), 0);
  const durationS = sum((r) => r.durationS);
  const requests = sum((r) => r.requests);
  const statusCodes: Record<string, number> = {};
  for (const r of runs) for (const [code, n] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const cpuKnown = runs.every((r) => r.cpuShare !== undefined && r.cpuUsPerReq !== undefined);
  return {
    label,
    url: runs[0]!.url,
    durationS,
    requests,
    rps: requests / durationS,
    p50Ms: percentile(pool, 50),
    p90Ms: percentile(pool, 90),
    p99Ms: percentile(pool, 99),
    maxMs: pool.length ? pool[pool.length - 1]! : NaN,
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    statusCodes,
    firstError: runs.find((r) => r.firstError)?.firstError,
    ...(cpuKnown ? { cpuShare: sum((r) => r.cpuShare! * r.durationS) / durationS, cpuUsPerReq: sum((r) => r.cpuUsPerReq! * r.requests) / Math.max(requests, 1) } : {}),
    latenciesMs: pool,
  };
}

export function runLoad(label: string, url: string, headers: Record<string, string>, s: LoadSettings): Promise<LoadResult> {
  // A fixed rate is sent by bench/lib/paced-load.ts: autocannon's overallRate is a burst at
  // the start of every second.
  if (s.rate) return runPacedLoad(label, url, headers, { ...s, rate: s.rate });
  return new Promise((resolve, reject) => {
    const samples = new Samples();
    let firstError: string | undefined;
    const instance = autocannon(
      { url, headers, connections: s.connections, pipelining: s.pipelining, duration: s.duration, timeout: 10 },
      (err, result) => {
        if (err) return reject(err);
        const sorted = samples.sorted();
        const statusCodes: Record<string, number> = {};
        for (const [code, { count }] of Object.entries(result.statusCodeStats)) statusCodes[code] = count;
        const requests = result.requests.total;
        resolve({
          label,
          url,
          durationS: result.duration,
          requests,
          rps: requests / result.duration,
          p50Ms: percentile(sorted, 50),
          p90Ms: percentile(sorted, 90),
          p99Ms: percentile(sorted, 99),
          maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
          errors: result.errors + result.mismatches,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          statusCodes,
          firstError,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, ms) => {
      if (statusCode >= 200 && statusCode < 300) samples.push(ms);
    });
    instance.on('reqError', (err) => {
      firstError ??= err.message;
    });
  });
}

export const runFailed = (r: LoadResult): boolean => r.errors > 0 || r.timeouts > 0 || r.non2xx > 0;
