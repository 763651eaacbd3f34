// The graceful drain: stop accepting, let requests in flight finish within the timeout (then
// cut them), and only then close the rest, the audit log last, so no line is lost.
import type { Server } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';

export function createShutdown(server: Server, hooks: {
  /** Called first: answers from now on close their connection, file watching stops. */
  drain: () => void;
  /** Called when the timeout cuts requests still in flight (their audit lines say so). */
  cut: () => void;
  /** Closes what serves besides the listener, the audit log last. */
  closeRest: () => Promise<void>;
}, defaultTimeoutMs: number): (timeoutMs?: number) => Promise<{ forced: boolean }> {
  let stopped: Promise<{ forced: boolean }> | undefined;
  return (timeoutMs = defaultTimeoutMs) => {
    stopped ??= (async () => {
      hooks.drain();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections are closed as soon as they are idle; requests in flight go on.
      server.closeIdleConnections();
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), timeoutMs)));
      const forced = (await Promise.race([closed, expired])) === 'expired';
      clearTimeout(timer);
      clearInterval(sweep);
      if (forced) {
        hooks.cut();
        server.closeAllConnections();
        await closed;
      }
      // Responses cut above write their audit line on 'close': let those callbacks run.
      await nextTurn();
      await hooks.closeRest();
      return { forced };
    })();
    return stopped;
  };
}
