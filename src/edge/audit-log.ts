// Step 1 of starting: the audit log. AUDIT_LOG is opened through the AuditSink, which batches
// lines, survives a full disk and reports what was lost; tests pass their own log instead.
import type { Logger } from 'pino';
import { auditLogTo, type AuditLog } from '../audit/audit.ts';
import { ConfigError, type Config } from '../config/env.ts';
import { AuditSink } from '../ops/audit-sink.ts';
import type { ProxyMetrics } from '../ops/metrics.ts';

export interface OpenAudit {
  audit: AuditLog;
  /** The file behind it, when the proxy opened AUDIT_LOG itself. */
  sink: AuditSink | undefined;
  /** AUDIT_ON_FAILURE=refuse and the log cannot be written: nothing may be served. */
  refusing: () => boolean;
}

export function openAuditLog(config: Config, given: AuditLog | undefined, metrics: ProxyMetrics, ops: Logger, retryMs: number): OpenAudit {
  if (given) return { audit: given, sink: undefined, refusing: () => false };
  let sink: AuditSink;
  try {
    sink = new AuditSink(config.auditLog, {
      onError: (err) => {
        metrics.auditWriteFailed();
        ops.error({ code: err.code, onFailure: config.auditOnFailure },
          config.auditOnFailure === 'refuse' ? 'audit log write failed: refusing requests until it can be written' : 'audit log write failed: serving on, lines are lost');
      },
      onLost: (n) => metrics.auditLinesLost(n),
      onProbe: (lost, since) => audit.write({ client: 'system', decision: 'audit-resumed', reason: 'write-failed', lost, since: since.toISOString() }),
      onState: (writable) => {
        metrics.auditWritable(writable);
        if (writable) ops.info('audit log writable again');
      },
    }, { retryMs });
  } catch (err) {
    throw new ConfigError(`AUDIT_LOG: cannot open ${config.auditLog ?? 'stdout'} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const audit = auditLogTo(sink);
  return { audit, sink, refusing: () => config.auditOnFailure === 'refuse' && !sink.writable };
}
