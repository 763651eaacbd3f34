// The swept response and silence bounds on their own, on a fake clock: never before the bound,
// within an eighth of it after, and time the client holds the body back does not count.
// Through a running proxy and a hanging or stalling GitLab: test/faults.test.ts.
import { EventEmitter } from 'node:events';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RequestContext } from '../context.ts';
import { upstreamGuard } from './timeouts.ts';

const RESPONSE_MS = 800;

/** What the sweep reads of a request to GitLab: connected already, destroyable. */
function fakeRequest(): ClientRequest & { error?: Error } {
  const req = Object.assign(new EventEmitter(), {
    socket: { connecting: false },
    destroyed: false,
    error: undefined as Error | undefined,
    destroy(err?: Error) {
      req.destroyed = true;
      req.error = err;
      return req;
    },
  });
  return req as unknown as ClientRequest & { error?: Error };
}

/** What the sweep reads of GitLab's response: whether it flows, and how to cut it. */
function fakeResponse(): IncomingMessage & { error?: Error; readableFlowing: boolean | null } {
  const res = { readableFlowing: true as boolean | null, destroyed: false, error: undefined as Error | undefined, destroy(err?: Error) {
    res.destroyed = true;
    res.error = err;
    return res;
  } };
  return res as unknown as IncomingMessage & { error?: Error; readableFlowing: boolean | null };
}

const ctx = (): RequestContext => ({ timedOut: false, reason: null }) as RequestContext;

describe('upstreamGuard', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('cuts a request without an answer at the bound, not before, and within an eighth after', () => {
    const guard = upstreamGuard({ connectMs: 100, responseMs: RESPONSE_MS });
    // Started mid-way between two sweeps: the worst case for "not before".
    const first = fakeRequest();
    guard.guard(first, ctx());
    vi.advanceTimersByTime(RESPONSE_MS / 16);
    const req = fakeRequest();
    const c = ctx();
    guard.guard(req, c);
    vi.advanceTimersByTime(RESPONSE_MS - 1);
    expect(req.destroyed).toBe(false);
    vi.advanceTimersByTime(RESPONSE_MS / 8 + 1);
    expect(req.destroyed).toBe(true);
    expect(c.timedOut).toBe(true);
    expect(req.error?.message).toBe('upstream response timeout');
    guard.close();
  });

  it('counts silence from the last chunk, and cuts a stalled body as stalled', () => {
    const guard = upstreamGuard({ connectMs: 100, responseMs: RESPONSE_MS });
    const req = fakeRequest();
    const c = ctx();
    const watch = guard.guard(req, c);
    const res = fakeResponse();
    vi.advanceTimersByTime(RESPONSE_MS / 2);
    watch.responded(res);
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(RESPONSE_MS / 2);
      watch.refresh();
    }
    expect(res.destroyed).toBe(false);
    vi.advanceTimersByTime(RESPONSE_MS - 1);
    expect(res.destroyed).toBe(false);
    vi.advanceTimersByTime(RESPONSE_MS / 8 + 1);
    expect(res.destroyed).toBe(true);
    expect(c).toMatchObject({ timedOut: true, reason: 'upstream-stalled' });
    expect((res.error as NodeJS.ErrnoException).code).toBe('UPSTREAM_STALL_TIMEOUT');
    expect(req.destroyed).toBe(false);
    guard.close();
  });

  it('does not count time the client holds the body back, and counts again once it reads', () => {
    const guard = upstreamGuard({ connectMs: 100, responseMs: RESPONSE_MS });
    const req = fakeRequest();
    const watch = guard.guard(req, ctx());
    const res = fakeResponse();
    watch.responded(res);
    res.readableFlowing = false;
    vi.advanceTimersByTime(5 * RESPONSE_MS);
    expect(res.destroyed).toBe(false);
    res.readableFlowing = true;
    vi.advanceTimersByTime(RESPONSE_MS - 1);
    expect(res.destroyed).toBe(false);
    vi.advanceTimersByTime(RESPONSE_MS / 4);
    expect(res.destroyed).toBe(true);
    guard.close();
  });

  it('forgets finished requests and stops sweeping when none is left', () => {
    const guard = upstreamGuard({ connectMs: 100, responseMs: RESPONSE_MS });
    const req = fakeRequest();
    guard.guard(req, ctx());
    expect(vi.getTimerCount()).toBe(1);
    req.destroyed = true;
    vi.advanceTimersByTime(RESPONSE_MS / 8);
    expect(vi.getTimerCount()).toBe(0);
    expect(req.error).toBeUndefined();
    guard.close();
  });
});
