// Waiting for events in tests, never for time. Whatever a test waits on (the stand-in's record,
// the audit sink, the ops log) notifies a `Changes` when it grows; `until` re-checks the
// condition on each notification and resolves as soon as it holds. The guard timeout is only
// there to fail a test that would otherwise hang: it is generous on purpose, and no test
// passes or fails because of how fast the machine is.
//
//   await until(standin.changes, () => standin.requests.length >= 3, 'three requests at GitLab');
//   const line = await until(h.auditChanges, () => h.audit.find((l) => l.reqId === id), `the audit line of ${id}`);

/** How long a wait may take before the test fails as hung (a guard, not a pacing). */
export const GUARD_MS = 15_000;

/** Listeners called whenever the thing they watch may have changed. */
export class Changes {
  readonly #listeners = new Set<() => void>();

  notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/**
 * Resolves with the first truthy value of `check`, evaluated now and after each notification
 * of `changes`. Rejects naming `what` if it does not hold within `guardMs`.
 */
export function until<T>(changes: Changes, check: () => T | undefined | null | false, what: string, guardMs = GUARD_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out waiting for ${what} (guard ${guardMs} ms)`));
    }, guardMs);
    const test = (): void => {
      let value: T | undefined | null | false;
      try {
        value = check();
      } catch (err) {
        clearTimeout(timer);
        unsubscribe();
        reject(err as Error);
        return;
      }
      if (!value) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    };
    const unsubscribe = changes.subscribe(test);
    test();
  });
}

/** A promise for one event of an emitter (a child process, a socket), with the same guard. */
export function event<T extends unknown[]>(
  emitter: { once(name: string, listener: (...args: T) => void): unknown; off(name: string, listener: (...args: T) => void): unknown },
  name: string,
  what = `the "${name}" event`,
  guardMs = GUARD_MS,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const listener = (...args: T): void => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(name, listener);
      reject(new Error(`timed out waiting for ${what} (guard ${guardMs} ms)`));
    }, guardMs);
    emitter.once(name, listener);
  });
}
