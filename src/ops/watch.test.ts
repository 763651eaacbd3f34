// The debounce of file watches, with a stepped clock: a burst of events spaced in time is one
// reload after the last of them, a stream that never pauses still reloads after maxWaitMs,
// and nothing fires after close. test/reload.test.ts covers the real file events.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchPaths } from './watch.ts';

/** A node:fs watch stand-in: `fire(path)` delivers one change event for that path. */
function fakeWatch() {
  const listeners = new Map<string, () => void>();
  return {
    watch: (path: string, _opts: { persistent: boolean }, listener: () => void) => {
      listeners.set(path, listener);
      return { close: () => void listeners.delete(path), on: () => undefined };
    },
    fire: (path: string) => listeners.get(path)!(),
    watched: () => [...listeners.keys()],
  };
}

describe('watchPaths', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  it('turns a burst of events, 20 ms apart, into one call 200 ms after the last', () => {
    const fs = fakeWatch();
    const onChange = vi.fn();
    const w = watchPaths(() => ['/p', '/p/presets'], onChange, { debounceMs: 200, watch: fs.watch });
    expect(fs.watched()).toEqual(['/p', '/p/presets']);
    for (let i = 0; i < 5; i++) {
      fs.fire(i % 2 ? '/p' : '/p/presets');
      vi.advanceTimersByTime(20);
    }
    vi.advanceTimersByTime(199 - 20);
    expect(onChange).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onChange).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10_000);
    expect(onChange).toHaveBeenCalledTimes(1);
    w.close();
  });

  it('calls at most maxWaitMs after the first event of a stream that never pauses', () => {
    const fs = fakeWatch();
    const onChange = vi.fn();
    const w = watchPaths(() => ['/p'], onChange, { debounceMs: 200, maxWaitMs: 2000, watch: fs.watch });
    for (let t = 0; t < 1900; t += 100) {
      fs.fire('/p');
      vi.advanceTimersByTime(100);
    }
    fs.fire('/p'); // at 1900 ms: the debounce would wait until 2100, the limit says 2000
    vi.advanceTimersByTime(99);
    expect(onChange).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onChange).toHaveBeenCalledTimes(1);
    w.close();
  });

  it('watches the paths again after each call (a replaced file is followed), and stops on close', () => {
    const fs = fakeWatch();
    let paths = ['/p'];
    const onChange = vi.fn(() => void (paths = ['/p', '/secrets/token']));
    const w = watchPaths(() => paths, onChange, { debounceMs: 200, watch: fs.watch });
    fs.fire('/p');
    vi.advanceTimersByTime(200);
    expect(fs.watched()).toEqual(['/p', '/secrets/token']);
    fs.fire('/secrets/token');
    w.close();
    vi.advanceTimersByTime(1000);
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(fs.watched()).toEqual([]);
  });
});
