// The timeouts around one request to GitLab:
//   connect   UPSTREAM_CONNECT_TIMEOUT_MS: TCP connect (and the TLS handshake for https) of a
//             new connection; a reused keep-alive connection is already connected;
//   response  UPSTREAM_RESPONSE_TIMEOUT_MS until GitLab's response headers, and the same bound
//             on silence while the body streams: GitLab may be slow, but a response that sends
//             nothing for that long is cut (time the client is not reading does not count).
// Both mark the context as timed out (so an answer not yet started is a 504) and destroy the
// request, which ends the client's response too.
//
// The response and silence bounds of every request in flight are checked by one sweep, eight
// times per bound, instead of a timer per request: a request only notes the sweep's count
// when it starts, when GitLab's headers and each chunk of its body arrive, and the sweep finds
// paused and finished requests itself. Timers and their listeners were a measurable share of
// the proxy's CPU per request (docs/benchmarks.md). A bound fires between its length and 9/8
// of it, never before.
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { RequestContext } from '../context.ts';
import { CONNECT_TIMEOUT, STALL_TIMEOUT } from '../ops/upstream.ts';

const coded = (message: string, code?: string): Error => Object.assign(new Error(message), code ? { code } : {});

export interface UpstreamTimeouts {
  connectMs: number;
  /** Until the response headers, and the longest silence while the body streams. */
  responseMs: number;
}

/** A request's signs of life, told by the caller. */
export interface ResponseWatch {
  /** GitLab's response headers arrived. */
  responded(response: IncomingMessage): void;
  /** A chunk of the body arrived. */
  refresh(): void;
}

/** Sweeps per bound: the bound fires within an eighth of itself. */
const TICKS = 8;

/** The sweep's count: a request's last sign of life is noted in it, not read off a clock. */
interface Sweeps {
  count: number;
}

class Watched implements ResponseWatch {
  /** The sweep count at the last sign of life. */
  seen: number;
  response: IncomingMessage | undefined;
  readonly proxyReq: ClientRequest;
  readonly ctx: RequestContext;
  readonly #sweeps: Sweeps;
  constructor(proxyReq: ClientRequest, ctx: RequestContext, sweeps: Sweeps) {
    this.proxyReq = proxyReq;
    this.ctx = ctx;
    this.#sweeps = sweeps;
    this.seen = sweeps.count;
  }
  responded(response: IncomingMessage): void {
    this.response = response;
    this.seen = this.#sweeps.count;
  }
  refresh(): void {
    this.seen = this.#sweeps.count;
  }
}

/** The timeouts of the requests to GitLab (one per forwarder). */
export interface UpstreamGuard {
  /** Installs the timeouts on one request to GitLab; the caller refreshes the returned watch
   *  when the response's headers and each of its chunks arrive. */
  guard(proxyReq: ClientRequest, ctx: RequestContext): ResponseWatch;
  /** Stops the sweep (the forwarder is closing). */
  close(): void;
}

export function upstreamGuard(limits: UpstreamTimeouts): UpstreamGuard {
  const tickMs = Math.max(1, Math.ceil(limits.responseMs / TICKS));
  const watched = new Set<Watched>();
  const sweeps: Sweeps = { count: 0 };
  let sweeper: NodeJS.Timeout | undefined;

  const sweep = (): void => {
    const tick = ++sweeps.count;
    for (const w of watched) {
      // The request is over (its response ended, or either side failed).
      if (w.proxyReq.destroyed) {
        watched.delete(w);
        continue;
      }
      const response = w.response;
      // Held back by the client (backpressure paused the body): the silence is not GitLab's,
      // and is counted again from when the client reads.
      if (response && response.readableFlowing !== true) {
        w.seen = tick;
        continue;
      }
      // More than TICKS whole sweeps since the last sign of life: at least responseMs.
      if (tick - w.seen <= TICKS) continue;
      watched.delete(w);
      w.ctx.timedOut = true;
      if (!response) {
        w.proxyReq.destroy(coded('upstream response timeout'));
      } else {
        if (w.ctx.reason === null) w.ctx.reason = 'upstream-stalled';
        response.destroy(coded('upstream response stalled', STALL_TIMEOUT));
      }
    }
    if (watched.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  return {
    guard(proxyReq, ctx) {
      guardConnect(proxyReq, ctx, limits.connectMs);
      const w = new Watched(proxyReq, ctx, sweeps);
      watched.add(w);
      sweeper ??= setInterval(sweep, tickMs).unref();
      return w;
    },
    close() {
      clearInterval(sweeper);
      sweeper = undefined;
      watched.clear();
    },
  };
}

/** A new connection is still connecting when it is handed to the request; a reused one is
 *  not. A connect is rare next to requests: it keeps a timer of its own. */
function guardConnect(proxyReq: ClientRequest, ctx: RequestContext, connectMs: number): void {
  const socket = proxyReq.socket as Socket | null;
  if (!socket?.connecting) return;
  const connectTimer = setTimeout(() => {
    ctx.timedOut = true;
    proxyReq.destroy(coded('upstream connect timeout', CONNECT_TIMEOUT));
  }, connectMs);
  const clear = (): void => clearTimeout(connectTimer);
  socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', clear);
  proxyReq.once('close', clear);
}
