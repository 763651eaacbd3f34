// The connection-level abuse of `npm run soak -- --abuse`: raw sockets that never finish
// their request, kept at a bounded number open. Each one is left for the proxy to close (the
// generator never closes one itself until the run ends); how each ended is counted.
//   silent       connects and sends nothing;
//   slow-header  sends a request line and then one byte of an endless header every TRICKLE_MS;
//   slow-body    sends whole headers of a POST announcing a body, then one body byte every
//                TRICKLE_MS: half without a token (refused at once, the body left unread),
//                half with the abuser's token to an allowed endpoint (admitted, body read).
import { connect, type Socket } from 'node:net';

const TRICKLE_MS = 2000;
const TICK_MS = 100;
/** New connections per tick at most, so a ramp does not look like a SYN flood. */
const OPEN_PER_TICK = 100;

type Kind = 'silent' | 'slow-header' | 'slow-body-anon' | 'slow-body-auth';
const MIX: Kind[] = ['slow-header', 'slow-header', 'slow-header', 'silent', 'slow-body-anon', 'slow-body-auth'];

interface Conn {
  kind: Kind;
  socket: Socket;
  nextWrite: number;
  status: number | null;
  head: string;
}

export interface ConnectionStats {
  opened: number;
  /** Closed by the proxy, by what it answered first ("408", "401", "none"). */
  closedBy: Map<string, number>;
  /** Closed by the proxy: how long after it was opened, in ms (for the max). */
  longestMs: number;
  /** Responses received (each one an audit line at the proxy). */
  responses: number;
  /** Connections that failed to connect or were reset (counted, not an error of the run). */
  errors: number;
}

export class ConnectionAbuse {
  readonly stats: ConnectionStats = { opened: 0, closedBy: new Map(), longestMs: 0, responses: 0, errors: 0 };
  readonly #open = new Set<Conn>();
  #target = 0;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #port: number;
  readonly #token: string;

  constructor(port: number, token: string) {
    this.#port = port;
    this.#token = token;
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** How many abusive connections to keep open (0: open no more; open ones are left alone). */
  hold(n: number): void {
    this.#target = n;
  }

  get open(): number {
    return this.#open.size;
  }

  /** Ends the run: whatever is still open is closed here (and reported as not closed by the proxy). */
  stop(): number {
    clearInterval(this.#timer);
    const left = this.#open.size;
    for (const c of this.#open) c.socket.destroy();
    this.#open.clear();
    return left;
  }

  #tick(): void {
    const now = performance.now();
    for (let i = 0; i < OPEN_PER_TICK && this.#open.size < this.#target; i++) this.#connect(MIX[this.#next++ % MIX.length]!, now);
    for (const c of this.#open) {
      if (c.kind === 'silent' || c.nextWrite > now || !c.socket.writable || c.socket.connecting) continue;
      c.nextWrite = now + TRICKLE_MS;
      c.socket.write(c.kind === 'slow-header' ? 'a' : 'x');
    }
  }

  #connect(kind: Kind, now: number): void {
    const socket = connect(this.#port, '127.0.0.1');
    const c: Conn = { kind, socket, nextWrite: now + TRICKLE_MS, status: null, head: '' };
    const opened = performance.now();
    this.#open.add(c);
    this.stats.opened++;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (kind === 'slow-header') socket.write('GET /api/v4/projects/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ');
      else if (kind !== 'silent') {
        const token = kind === 'slow-body-auth' ? `PRIVATE-TOKEN: ${this.#token}\r\n` : '';
        socket.write(`POST /api/v4/projects/9/statuses/abc123 HTTP/1.1\r\nHost: 127.0.0.1\r\n${token}content-type: application/json\r\ncontent-length: 100000\r\n\r\n{"state":"`);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      if (c.status !== null) return;
      c.head += chunk.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(c.head);
      if (m) {
        c.status = Number(m[1]);
        this.stats.responses++;
      }
    });
    socket.on('error', () => {
      this.stats.errors++;
    });
    socket.on('close', () => {
      if (!this.#open.delete(c)) return; // closed by stop()
      const key = c.status === null ? 'none' : String(c.status);
      this.stats.closedBy.set(key, (this.stats.closedBy.get(key) ?? 0) + 1);
      this.stats.longestMs = Math.max(this.stats.longestMs, performance.now() - opened);
    });
  }
}
