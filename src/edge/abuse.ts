// What one vendor connection may hold, and for how long, so that resident memory has a
// ceiling that follows from the settings (docs/operations.md, "Under abuse"):
//   - CLIENT_HEADERS_TIMEOUT_MS: a request's headers must be whole this long after its first
//     byte (a connection that sends nothing counts from when it was accepted);
//   - CLIENT_REQUEST_TIMEOUT_MS: the whole request, body included, likewise;
//   - CLIENT_IDLE_TIMEOUT_MS: an idle keep-alive connection between requests;
//   - MAX_CONNECTIONS: connections open at once; further ones are closed as they arrive.
// The first two close the connection with a 408 and one audit line (reason client-timeout).
import { type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AuditLog, AuditRecord } from '../audit/audit.ts';
import type { Limits } from '../config/env.ts';
import { contextOf } from '../context.ts';
import { answer, rawAnswer, refusal } from '../errors.ts';
import { collect as v8Collect, type Collect } from '../ops/gc.ts';
import type { ProxyMetrics } from '../ops/metrics.ts';

/** How often at most a connections-capped audit line is written while the cap is hit. */
const CAPPED_LINE_EVERY_MS = 10_000;

type TimeoutOptions = Pick<ServerOptions, 'keepAliveTimeout' | 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'>;

export function clientTimeouts(limits: Limits): TimeoutOptions {
  const shortest = Math.min(limits.clientHeadersTimeoutMs, limits.clientRequestTimeoutMs);
  return {
    keepAliveTimeout: limits.clientIdleTimeoutMs,
    headersTimeout: limits.clientHeadersTimeoutMs,
    requestTimeout: limits.clientRequestTimeoutMs,
    // Node checks the two timeouts only on this beat (30 s by default, which would let a slow
    // client outlive a 1 s timeout by 30 s): a timeout is honoured within a quarter of itself,
    // and at most a second late. One pass walks the open connections' list, cheap at 1 Hz.
    connectionsCheckingInterval: Math.max(1, Math.min(1000, Math.floor(shortest / 4))),
  };
}

export interface AbuseDeps {
  limits: Limits;
  audit: AuditLog;
  metrics: ProxyMetrics;
  ops: Logger;
}

/** MAX_CONNECTIONS: Node closes a connection past the cap as it arrives ('drop'); each is
 *  counted, and the audit and ops logs say so at most once per 10 s with how many. */
export function capConnections(server: Server, d: AbuseDeps): void {
  server.maxConnections = d.limits.maxConnections;
  let pending = 0;
  let lastLine = -Infinity;
  let timer: NodeJS.Timeout | undefined;
  const report = (): void => {
    timer = undefined;
    if (pending === 0) return;
    lastLine = performance.now();
    d.audit.write({ client: 'system', decision: 'connections-capped', reason: 'max-connections', dropped: pending });
    d.ops.warn({ dropped: pending, maxConnections: d.limits.maxConnections }, 'MAX_CONNECTIONS vendor connections are open: new connections are closed as they arrive');
    pending = 0;
  };
  server.on('drop', () => {
    d.metrics.connectionDropped();
    pending++;
    if (timer) return;
    const wait = lastLine + CAPPED_LINE_EVERY_MS - performance.now();
    if (wait <= 0) report();
    else timer = setTimeout(report, wait).unref();
  });
  const stopWaves = releaseAfterWave(server);
  // Whatever was counted since the last line is written when the listener closes (shutdown).
  server.once('close', () => {
    clearTimeout(timer);
    stopWaves();
    report();
  });
}

/** How often the open connections are counted for releaseAfterWave(). */
const WAVE_CHECK_MS = 5000;
/** A wave worth a collection: this many connections closed since the count's peak... */
const WAVE_CONNECTIONS = 1000;
/** ...and no more often than this. */
const WAVE_GC_EVERY_MS = 60_000;

/**
 * Once a wave of connections is over (WAVE_CONNECTIONS fewer than their peak, and at most a
 * tenth of it still open), asks V8 for the collection it runs under memory pressure, which
 * also gives its empty pages back to the OS; otherwise the memory of thousands of closed
 * connections stays with the process until V8's heap next fills (docs/operations.md, "Under
 * abuse"). What Node's C++ side freed goes back to the OS only if the C allocator returns it:
 * the image preloads jemalloc, which does; glibc's malloc keeps most of it.
 */
export function releaseAfterWave(server: Server, opts: { collect?: Collect | null; checkMs?: number; minClosed?: number; checked?: (open: number) => void } = {}): () => void {
  const collect = opts.collect === undefined ? v8Collect : opts.collect;
  const minClosed = opts.minClosed ?? WAVE_CONNECTIONS;
  let peak = 0;
  let last = -Infinity;
  const timer = setInterval(() => {
    server.getConnections((err, open) => {
      if (err) return;
      peak = Math.max(peak, open);
      opts.checked?.(open);
      // Not while the wave goes on: the pause (~250 ms with thousands of connections' garbage)
      // would hold up every request, and the memory would be taken again at once.
      if (peak - open < minClosed || open > peak / 10 || performance.now() - last < WAVE_GC_EVERY_MS) return;
      last = performance.now();
      peak = open;
      collect?.({ type: 'major', execution: 'async', flavor: 'last-resort' });
    });
  }, opts.checkMs ?? WAVE_CHECK_MS).unref();
  return () => clearInterval(timer);
}

const timedOut = new WeakSet<Socket>();

/** Timed-out connections answered per turn of the event loop. */
const TIMEOUTS_PER_TURN = 8;

/**
 * Answers Node's timed-out connections a few at a time. Node reports every connection that
 * timed out since its last check in one go, and connections opened together (an attacker's
 * wave) time out together: answering hundreds of them (a 408, an audit line, a close) in one
 * turn held up every other request for ~45 ms in the abuse soak. Between batches the event
 * loop serves the requests that are waiting; a queued connection closes a few ms later.
 */
export function pacedTimeouts(handle: (socket: Socket) => void, perTurn = TIMEOUTS_PER_TURN): (socket: Socket) => void {
  const queued = new Set<Socket>();
  let scheduled = false;
  const drain = (): void => {
    scheduled = false;
    let n = 0;
    for (const socket of queued) {
      queued.delete(socket);
      handle(socket);
      if (++n === perTurn) break;
    }
    if (queued.size > 0) {
      scheduled = true;
      setImmediate(drain);
    }
  };
  return (socket) => {
    // Node reports a connection again on its next check while it is still open.
    if (queued.has(socket)) return;
    queued.add(socket);
    if (!scheduled) {
      scheduled = true;
      setImmediate(drain);
    }
  };
}

/**
 * Node's headers or request timeout fired on `socket` (clientError ERR_HTTP_REQUEST_TIMEOUT).
 * Returns the audit record to count when it wrote one itself; the request being received, if
 * the app already has it, is audited by the listener when its response closes, once.
 */
export function clientTimedOut(socket: Socket, audit: AuditLog): AuditRecord | undefined {
  // Node may report the same connection again on its next check until it is gone.
  if (timedOut.has(socket)) return undefined;
  timedOut.add(socket);
  const r = refusal('client-timeout', { closeConnection: true });
  const { status, headers, body } = answer(r);
  const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
  let record: AuditRecord | undefined;
  if (res) {
    // The headers were whole and the app is reading the body: its line says why it ended.
    const ctx = contextOf(res.req);
    ctx.decision = 'deny';
    ctx.reason = 'client-timeout';
    ctx.detail = 'body';
    if (!res.headersSent) res.statusCode = status;
  } else {
    record = {
      reqId: 'client-timeout', client: null, jti: null, method: '', path: '', queryKeys: [], rule: null, route: null,
      decision: 'deny', reason: r.reason, detail: 'headers', status, durationMs: 0, upstreamMs: null,
      bytesIn: 0, bytesOut: Buffer.byteLength(body), ip: socket.remoteAddress ?? null, userAgent: null,
    };
    audit.write(record);
  }
  if (socket.writable && !res?.headersSent) {
    // Closed once the answer is handed to the kernel: a client that never reads or never
    // closes its side must not keep the connection half-open.
    socket.end(rawAnswer({ status, headers, body }), () => socket.destroy());
  } else {
    socket.destroy();
  }
  return record;
}
