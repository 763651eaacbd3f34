// V8's garbage collector, for the two moments the proxy asks for a collection itself: while a
// download streams (src/forward/stream-memory.ts) and once start-up is over (below).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's gc() options (its gc extension): `last-resort` is the collection V8 runs under memory
 *  pressure, which also gives the young generation and empty pages back to the OS. */
export type Collect = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

/** V8's gc(), from a fresh context: exposing it there leaves this process's global alone
 *  unless Node was started with --expose-gc anyway. Null when it cannot be had. */
function loadCollector(): Collect | null {
  try {
    const existing = (globalThis as { gc?: Collect }).gc;
    if (typeof existing === 'function') return existing;
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    return null;
  }
}

export const collect = loadCollector();

/**
 * Gives start-up's garbage back to the OS. Loading modules, the route catalogue and the policy
 * leaves V8's young generation grown to its maximum and tens of MiB of dead objects; V8 would
 * return them only after some seconds of idleness (its memory reducer), so a proxy that is
 * busy from the start would carry them. One full collection, tens of milliseconds, once `serve`
 * has started the proxy (docs/benchmarks.md: idle RSS).
 */
export function releaseStartupMemory(): void {
  collect?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
