// Watches the files a reload reads and calls back, debounced, when any of them may have
// changed. Directories are watched (not only files) because Kubernetes updates a mounted
// ConfigMap or Secret by swapping the `..data` symlink in the directory: the files keep their
// names, and a watch on the old file would never fire. Files are watched too, because a
// single-file bind mount (Docker secrets) changes in place without any event in its
// directory. After each change every watch is set up again, so a replaced file is followed.
// The callback decides whether anything really changed (by comparing checksums).
import { watch as fsWatch } from 'node:fs';

export interface Watcher {
  /** Sets the watches up again for the current list of paths. */
  rearm(): void;
  close(): void;
}

export interface WatchOptions {
  debounceMs?: number;
  maxWaitMs?: number;
  /** node:fs watch, or a stand-in that fires events on demand (tests of the debounce). */
  watch?: (path: string, options: { persistent: boolean }, listener: () => void) => PathWatch;
}

type PathWatch = { close(): void; on(event: 'error', listener: (err: Error) => void): unknown };

export function watchPaths(paths: () => Iterable<string>, onChange: () => void, opts: WatchOptions = {}): Watcher {
  const watch = opts.watch ?? fsWatch;
  const debounceMs = opts.debounceMs ?? 200;
  const maxWaitMs = opts.maxWaitMs ?? 2000;
  const watchers = new Map<string, PathWatch>();
  let timer: NodeJS.Timeout | undefined;
  let firstEventAt = 0;
  let closed = false;

  const fire = (): void => {
    timer = undefined;
    firstEventAt = 0;
    if (closed) return;
    onChange();
    rearm();
  };
  const onEvent = (): void => {
    if (closed) return;
    const now = Date.now();
    if (firstEventAt === 0) firstEventAt = now;
    if (timer) clearTimeout(timer);
    // Trailing debounce, but never postponed past maxWaitMs from the first event.
    timer = setTimeout(fire, Math.max(0, Math.min(debounceMs, firstEventAt + maxWaitMs - now)));
    timer.unref();
  };
  const rearm = (): void => {
    if (closed) return;
    for (const w of watchers.values()) w.close();
    watchers.clear();
    for (const path of new Set(paths())) {
      try {
        const w = watch(path, { persistent: false }, onEvent);
        w.on('error', () => {
          w.close();
          watchers.delete(path);
        });
        watchers.set(path, w);
      } catch {
        // Missing for now: the reload that follows reports it, and the next rearm retries.
      }
    }
  };

  rearm();
  return {
    rearm,
    close: () => {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
