// The request-level abuse of `npm run soak -- --abuse`, each on a schedule and bounded:
//   burst       BURST_SIZE requests at once from a client whose policy has a rate limit
//               (most are refused 429 rate-limited), every BURST_EVERY_MS;
//   oversized   a POST announcing a body over MAX_BODY_BYTES (refused 413 before reading),
//               and a chunked POST streaming past it (read up to the limit, then 413);
//   nested      a JSON body nested NEST_DEPTH deep, to an allowed endpoint.
// Every answer received is counted by status: each is one audit line at the proxy.
import { Agent, request } from 'node:http';

const BURST_SIZE = 300;
const BURST_EVERY_MS = 5000;
const OVERSIZED_EVERY_MS = 1000;
const CHUNKED_EVERY_MS = 3000;
const NESTED_EVERY_MS = 1000;
const NEST_DEPTH = 50_000;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

export interface RequestStats {
  sent: number;
  byStatus: Map<number, number>;
  /** Requests that ended without an answer (the proxy closed while the body was sent). */
  noAnswer: number;
}

export class RequestAbuse {
  readonly stats: RequestStats = { sent: 0, byStatus: new Map(), noAnswer: 0 };
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 32 });
  readonly #timers: NodeJS.Timeout[] = [];
  #inFlight = 0;
  readonly #base: string;

  constructor(base: string, tokens: { burster: string; uploader: string }, maxBodyBytes: number) {
    this.#base = base;
    const nested = `{"state":"success","description":${'['.repeat(NEST_DEPTH)}${']'.repeat(NEST_DEPTH)}}`;
    const every = (ms: number, fn: () => void): void => void this.#timers.push(setInterval(fn, ms));
    every(BURST_EVERY_MS, () => {
      for (let i = 0; i < BURST_SIZE; i++) this.#send('GET', '/api/v4/projects/1', tokens.burster);
    });
    every(OVERSIZED_EVERY_MS, () => this.#send('POST', '/api/v4/projects/1/statuses/abc123', tokens.uploader, { declared: maxBodyBytes * 2 }));
    every(CHUNKED_EVERY_MS, () => this.#send('POST', '/api/v4/projects/1/statuses/abc123', tokens.uploader, { stream: maxBodyBytes + CHUNK.length * 4 }));
    every(NESTED_EVERY_MS, () => this.#send('POST', '/api/v4/projects/1/statuses/abc123', tokens.uploader, { body: nested }));
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  stop(): void {
    for (const t of this.#timers) clearInterval(t);
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(method: string, path: string, token: string, body: { declared?: number; stream?: number; body?: string } = {}): void {
    this.stats.sent++;
    this.#inFlight++;
    let done = false;
    const end = (status: number | null): void => {
      if (done) return;
      done = true;
      this.#inFlight--;
      if (status === null) this.stats.noAnswer++;
      else this.stats.byStatus.set(status, (this.stats.byStatus.get(status) ?? 0) + 1);
    };
    const headers: Record<string, string> = { 'PRIVATE-TOKEN': token };
    if (method === 'POST') headers['content-type'] = 'application/json';
    if (body.declared !== undefined) headers['content-length'] = String(body.declared);
    if (body.body !== undefined) headers['content-length'] = String(Buffer.byteLength(body.body));
    const req = request(`${this.#base}${path}`, { method, headers, agent: this.#agent, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => end(res.statusCode ?? 0));
      res.on('error', () => end(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => end(null));
    if (body.stream !== undefined) {
      // Chunked, honouring backpressure, until the proxy answers or the bytes are sent.
      let left = body.stream;
      const pump = (): void => {
        while (left > 0 && !req.destroyed) {
          left -= CHUNK.length;
          if (!req.write(CHUNK)) return void req.once('drain', pump);
        }
        req.end();
      };
      req.once('response', () => (left = 0));
      pump();
    } else {
      req.end(body.body);
    }
  }
}
