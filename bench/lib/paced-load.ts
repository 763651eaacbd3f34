// A fixed-rate load: requests sent at evenly spaced times, whether or not earlier ones have
// been answered (an open-loop load), each on a free keep-alive connection, pipelining 1.
// autocannon's `overallRate` is not this: each of its connections sends its share of the
// second as fast as it can and then waits for the next second (autocannon lib/httpClient.js,
// `reqsMadeThisSecond`), so for the first part of every second the target is saturated.
// Latency is counted from the time a request was due, not from when a connection was free to
// send it, so a target that falls behind shows its queue (no coordinated omission).
import { connect, type Socket } from 'node:net';
import { percentile, Samples } from './stats.ts';
import type { LoadResult, LoadSettings } from './load.ts';

const TIMEOUT_MS = 10_000;
/** How often due requests are sent: Node's timers fire at most once a millisecond. */
const TICK_MS = 1;

interface Conn {
  socket: Socket;
  /** When the request on this connection was due (ms, performance.now()); null: idle. */
  dueMs: number | null;
  buffered: Buffer;
}

export function runPacedLoad(label: string, url: string, headers: Record<string, string>, s: LoadSettings & { rate: number }): Promise<LoadResult> {
  const target = new URL(url);
  const head = [`GET ${target.pathname}${target.search} HTTP/1.1`, `Host: ${target.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  const request = Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1');
  const total = Math.round(s.rate * s.duration);
  const intervalMs = 1000 / s.rate;
  const samples = new Samples();
  const statusCodes: Record<string, number> = {};
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let timeouts = 0;
  let non2xx = 0;
  let firstError: string | undefined;
  const idle: Conn[] = [];
  const conns: Conn[] = [];

  return new Promise((resolve) => {
    let startMs = 0;
    let ticker: NodeJS.Timeout | undefined;
    let finished = false;

    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearInterval(ticker);
      for (const c of conns) c.socket.destroy();
      const durationS = (performance.now() - startMs) / 1000;
      const sorted = samples.sorted();
      resolve({
        label,
        url,
        durationS,
        requests: answered,
        rps: answered / durationS,
        p50Ms: percentile(sorted, 50),
        p90Ms: percentile(sorted, 90),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
        errors,
        timeouts,
        non2xx,
        statusCodes,
        firstError,
        latenciesMs: sorted,
      });
    };
    const fail = (message: string): void => {
      errors++;
      firstError ??= message;
    };
    const settled = (): boolean => sent === total && answered + errors + timeouts >= total;

    /** Send every request that is due, on the connections that are free. */
    const pump = (): void => {
      const now = performance.now();
      while (sent < total && startMs + sent * intervalMs <= now) {
        if (now - (startMs + sent * intervalMs) > TIMEOUT_MS) {
          // Due so long ago that no connection freed up in time: the target stopped answering.
          timeouts++;
          sent++;
          continue;
        }
        const conn = idle.pop();
        if (!conn) break;
        conn.dueMs = startMs + sent * intervalMs;
        sent++;
        conn.socket.write(request);
      }
      for (const c of conns) {
        if (c.dueMs !== null && now - c.dueMs > TIMEOUT_MS) {
          timeouts++;
          firstError ??= 'timeout';
          c.dueMs = null;
          c.socket.destroy();
        }
      }
      if (settled()) finish();
    };

    const onData = (conn: Conn, chunk: Buffer): void => {
      conn.buffered = conn.buffered.length ? Buffer.concat([conn.buffered, chunk]) : chunk;
      const end = conn.buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const headText = conn.buffered.subarray(0, end).toString('latin1');
      const status = Number(headText.slice(9, 12));
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
      if (!length) {
        fail(`${label}: a response without Content-Length (status ${status})`);
        conn.socket.destroy();
        return;
      }
      const size = end + 4 + Number(length[1]);
      if (conn.buffered.length < size) return;
      if (conn.buffered.length > size) fail(`${label}: bytes after the response`);
      conn.buffered = Buffer.alloc(0);
      if (conn.dueMs === null) return fail(`${label}: a response nobody asked for`);
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
      if (status >= 200 && status < 300) samples.push(performance.now() - conn.dueMs);
      else non2xx++;
      answered++;
      conn.dueMs = null;
      idle.push(conn);
      pump();
    };

    let opened = 0;
    const start = (): void => {
      startMs = performance.now();
      ticker = setInterval(pump, TICK_MS);
    };
    for (let i = 0; i < s.connections; i++) {
      const socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
      const conn: Conn = { socket, dueMs: null, buffered: Buffer.alloc(0) };
      conns.push(conn);
      socket.on('data', (chunk: Buffer) => onData(conn, chunk));
      socket.on('error', (err) => fail(`${label}: ${err.message}`));
      socket.on('close', () => {
        if (startMs === 0 && ++opened === s.connections) start();
        const at = idle.indexOf(conn);
        if (at !== -1) idle.splice(at, 1);
        if (conn.dueMs !== null && !finished) fail(`${label}: connection closed before the answer`);
        conn.dueMs = null;
        if (!finished && conns.every((c) => c.socket.destroyed)) finish();
      });
      socket.once('connect', () => {
        idle.push(conn);
        if (++opened === s.connections) start();
      });
    }
  });
}
