// Audit lines for tests of `learn` and `audit`, shaped like the proxy's own (src/context.ts).
import type { AuditRecord } from '../../src/audit/audit.ts';

let seq = 0;
/** One audit line as the proxy writes it; times advance by a second per line from
 *  2024-05-01T10:00:00Z unless given. */
export function line(client: string | null, method: string, path: string, decision: AuditRecord['decision'], extra: Partial<AuditRecord> & { time?: string } = {}): string {
  seq++;
  const record = {
    time: extra.time ?? new Date(Date.UTC(2024, 4, 1, 10, 0, seq)).toISOString(),
    reqId: `req-${seq}`, client, jti: client ? `jti-${client}` : null, method, path, queryKeys: [],
    rule: decision === 'allow' ? 'GET /api/v4/projects/:id (policies/x.yaml:3)' : null,
    decision, reason: decision === 'allow' ? null : 'no-rule: no rule matches',
    status: decision === 'deny' ? 403 : 200, durationMs: 3.2, upstreamMs: decision === 'deny' ? null : 2.1,
    bytesIn: 0, bytesOut: 120, ip: '127.0.0.1', userAgent: 'vendor/1.0',
    ...extra,
  };
  return JSON.stringify(record);
}

