// The streaming memory governor (src/forward/stream-memory.ts): it must really obtain V8's
// collector on this Node and ask for a young-generation collection per 2 MiB streamed;
// otherwise it fails silently and streamed downloads grow the process by tens of MiB again
// (measured by `npm run bench`, section 2).
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { getHeapSpaceStatistics } from 'node:v8';
import { countStreamed, STREAM_GC_BYTES, streamCollectorAvailable } from '../src/forward/stream-memory.ts';
import { releaseStartupMemory } from '../src/ops/gc.ts';

function minorCollectionsDuring(fn: () => void): Promise<number> {
  return new Promise((resolve) => {
    const seen: unknown[] = [];
    const observer = new PerformanceObserver((list) => seen.push(...list.getEntries().map((e) => ('detail' in e ? e.detail : undefined))));
    observer.observe({ entryTypes: ['gc'] });
    fn();
    // A GC's entry is made in an immediate Node queues after the collection, and observers get
    // it in another immediate: a few turns of the loop deliver every entry of what fn() did,
    // without a window of wall-clock time in which unrelated collections could land.
    void afterImmediates(4).then(() => {
      observer.disconnect();
      resolve(seen.filter((detail) => (detail as { kind?: number } | undefined)?.kind === constants.NODE_PERFORMANCE_GC_MINOR).length);
    });
  });
}

async function afterImmediates(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('stream memory governor', () => {
  it('obtains the collector on this Node', () => {
    expect(streamCollectorAvailable).toBe(true);
  });

  it('asks for one young-generation collection per 2 MiB of streamed body', async () => {
    // Without allocating, nothing else would make V8 collect in these few microseconds.
    const collections = await minorCollectionsDuring(() => {
      for (let i = 0; i < 6 * 16; i++) countStreamed(STREAM_GC_BYTES / 16);
    });
    expect(collections).toBeGreaterThanOrEqual(5);
    expect(collections).toBeLessThanOrEqual(8);
  });

  it('does not collect for small answers', async () => {
    const collections = await minorCollectionsDuring(() => {
      countStreamed(300);
    });
    expect(collections).toBe(0);
  });
});

describe('start-up memory', () => {
  const newSpace = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

  it('gives the young generation that start-up grew back to the OS (serve calls it once up)', () => {
    // Objects that survive young collections make V8 grow its young generation, as loading
    // modules and the policy does.
    let keep: object[] = [];
    for (let i = 0; i < 2_000_000; i++) {
      keep.push({ i });
      if (keep.length > 200_000) keep = [];
    }
    const grown = newSpace();
    keep.length = 0;
    releaseStartupMemory();
    expect(newSpace()).toBeLessThan(grown / 2);
  });
});
