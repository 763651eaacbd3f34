// The vendor traffic of `npm run soak -- --abuse`: a steady rate of ordinary requests on a
// keep-alive agent, every answer checked (status, whole body), latencies kept per phase.
import { Agent, request } from 'node:http';

interface Kind {
  method: string;
  path: string;
  body?: string;
  expect: number;
  bytes?: number;
}
const ARCHIVE_BYTES = 65_536;
const KINDS: Kind[] = [
  { method: 'GET', path: '/api/v4/projects/1', expect: 200 },
  { method: 'GET', path: '/api/v4/projects/2', expect: 200 },
  { method: 'GET', path: '/api/v4/projects?per_page=5&page=2', expect: 200 },
  { method: 'POST', path: '/api/v4/projects/1/statuses/0a1b2c3d', body: '{"state":"success","name":"soak"}', expect: 201 },
  { method: 'GET', path: `/api/v4/projects/1/repository/archive?bytes=${ARCHIVE_BYTES}`, expect: 200, bytes: ARCHIVE_BYTES },
  { method: 'GET', path: '/api/v4/user', expect: 403 },
];
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_IN_FLIGHT = 2000;

export class NormalTraffic {
  sent = 0;
  done = 0;
  inFlight = 0;
  readonly failures = new Map<string, number>();
  /** Latencies in ms by phase name. */
  readonly latencies = new Map<string, number[]>();
  phase = 'warm-up';
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  #k = 0;
  readonly #base: string;
  readonly #token: string;

  constructor(base: string, token: string) {
    this.#base = base;
    this.#token = token;
  }

  get failed(): number {
    let n = 0;
    for (const v of this.failures.values()) n += v;
    return n;
  }

  /** Sends `owed` more requests (what the schedule owes by now). */
  catchUp(owed: number): void {
    for (let i = 0; i < owed; i++) {
      if (this.inFlight >= MAX_IN_FLIGHT) {
        this.sent++;
        this.#fail('generator: too many in flight');
        continue;
      }
      this.#fire(KINDS[this.#k++ % KINDS.length]!);
    }
  }

  close(): void {
    this.#agent.destroy();
  }

  #fail(why: string): void {
    this.failures.set(why, (this.failures.get(why) ?? 0) + 1);
  }

  #fire(kind: Kind): void {
    this.sent++;
    this.inFlight++;
    const phase = this.phase;
    const start = performance.now();
    let settled = false;
    const settle = (why: string | null): void => {
      if (settled) return;
      settled = true;
      this.inFlight--;
      this.done++;
      if (why) return this.#fail(`${kind.method} ${kind.path.split('?')[0]}: ${why}`);
      let list = this.latencies.get(phase);
      if (!list) this.latencies.set(phase, (list = []));
      list.push(performance.now() - start);
    };
    const headers: Record<string, string> = { 'PRIVATE-TOKEN': this.#token };
    if (kind.body) headers['content-type'] = 'application/json';
    const req = request(`${this.#base}${kind.path}`, { method: kind.method, headers, agent: this.#agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
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
  }
}

export function percentile(xs: number[], p: number): number {
  const sorted = xs.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
