// The audit stream: one JSON line per request to the proxy's API surface, allowed or not.
// The fields are a closed list; headers, query values and bodies are never written, so no
// token or credential can reach the log.
import pino, { type DestinationStream, type Logger } from 'pino';

export type AuditDecision = 'allow' | 'deny' | 'local';

export interface AuditRecord {
  reqId: string;
  client: string | null;
  jti: string | null;
  method: string;
  path: string;
  /** Names of the query parameters (never their values). */
  queryKeys: string[];
  rule: string | null;
  decision: AuditDecision;
  reason: string | null;
  status: number;
  durationMs: number;
  upstreamMs: number | null;
  bytesIn: number;
  bytesOut: number;
  ip: string | null;
  userAgent: string | null;
  aborted?: true;
}

export interface AuditLog {
  write(record: AuditRecord): void;
  /** Resolves when everything written so far is on disk (or stdout). */
  flush(): Promise<void>;
}

export function createAuditLog(path: string | undefined, onError: (err: Error) => void): AuditLog {
  const dest = pino.destination({ dest: path ?? 1, sync: false, mkdir: path !== undefined });
  dest.on('error', onError);
  return auditLogTo(dest);
}

export function auditLogTo(dest: DestinationStream): AuditLog {
  const logger: Logger = pino(
    {
      base: null,
      // Audit lines carry no level. With an empty level, the line opens with the timestamp,
      // so it is written without pino's usual leading comma.
      formatters: { level: () => ({}) },
      timestamp: () => `"time":"${new Date().toISOString()}"`,
    },
    dest,
  );
  return {
    write: (record) => logger.info(record),
    flush: () =>
      new Promise((resolve) => {
        const flushable = dest as DestinationStream & { flush?: (cb: (err?: Error) => void) => void };
        if (typeof flushable.flush === 'function') flushable.flush(() => resolve());
        else resolve();
      }),
  };
}

/** Operational logs (start, reloads, errors): separate from the audit stream, on stderr. */
export function createOpsLog(level: string): Logger {
  return pino({ level, base: { svc: 'gitlab-scope-proxy' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}
