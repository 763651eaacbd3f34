// The audit stream: one JSON line per request to the proxy's API surface, allowed or not.
// The fields are a closed list; headers, query values and bodies are never written, so no
// token or credential can reach the log.
import pino, { type DestinationStream, type Logger } from 'pino';

/** allow: forwarded by a rule; deny: refused; local: answered by the proxy (OPTIONS);
 *  would-deny: forwarded although no rule allows it, because the client is in report mode
 *  (`reason` says what enforce mode would have refused it for). */
export type AuditDecision = 'allow' | 'deny' | 'local' | 'would-deny';

export interface AuditRecord {
  reqId: string;
  client: string | null;
  jti: string | null;
  method: string;
  path: string;
  /** Names of the query parameters (never their values). */
  queryKeys: string[];
  rule: string | null;
  /** The GitLab route the request reaches, "GET /api/v4/projects/:id (Projects)"
   *  (src/catalogue/); null when none or before the path was read. */
  route: string | null;
  decision: AuditDecision;
  reason: string | null;
  /** What the reason concerned: the rule, project or field (never a value that could be a secret). */
  detail?: string;
  status: number;
  durationMs: number;
  upstreamMs: number | null;
  bytesIn: number;
  bytesOut: number;
  ip: string | null;
  userAgent: string | null;
  aborted?: true;
  /** OAuth endpoints (src/oauth/): the grant and the person who approved it, never a token. */
  oauth?: OAuthAuditDetail;
}

export interface OAuthAuditDetail {
  grant?: string;
  approver?: string;
  /** How the approver was admitted (OAUTH_APPROVERS entry), on approval. */
  approverRule?: string;
}

/**
 * A line about the proxy itself rather than about a request. Told apart from request lines
 * by `client: "system"` (a name no policy may give a client) and by having no reqId.
 *   reload          the policy and secrets were read again and are in force
 *                   (checksum: the policy now in force; previousChecksum: the one replaced;
 *                   changed: what differed: "policy", "gitlab-token", "jwt-keys",
 *                   "client-token:NAME", "tls-certificate");
 *   reload-refused  the new policy or a secret failed to load; the previous one stays
 *                   (checksum: the refused policy's, null if its files could not be read;
 *                   previousChecksum: the one still in force; problems: how many);
 *   audit-resumed   the audit log is writable again after a failure (lost: lines that never
 *                   reached it; since: when the failure began);
 *   limits-per-replica  Redis (REDIS_URL) is out of reach: rate and concurrency limits are
 *                   counted by each replica alone until it answers (src/limits/shared-limits.ts);
 *   limits-shared   Redis answers again: limits are shared by all replicas again;
 *   connections-capped  MAX_CONNECTIONS vendor connections were open and further ones were
 *                   closed as they arrived (dropped: how many since the previous such line;
 *                   at most one line per 10 s, src/edge/abuse.ts).
 * `reason` is what caused it: "sighup", "file-change", "api", "write-failed",
 * "redis-unreachable", "redis-timeout", "redis-back" or "max-connections".
 */
export interface SystemAuditRecord {
  client: 'system';
  decision: 'reload' | 'reload-refused' | 'audit-resumed' | 'limits-per-replica' | 'limits-shared' | 'connections-capped';
  reason: string;
  checksum?: string | null;
  previousChecksum?: string;
  changed?: string[];
  problems?: number;
  lost?: number;
  since?: string;
  dropped?: number;
}

/** An operator's action on an OAuth grant outside a request (`gitlab-scope-proxy grants revoke`). */
export interface GrantAuditRecord {
  client: string;
  decision: 'local';
  reason: 'oauth-revoked-by-operator';
  oauth: OAuthAuditDetail;
}

export interface AuditLog {
  write(record: AuditRecord | SystemAuditRecord | GrantAuditRecord): void;
  /** Resolves when everything written so far is on disk (or stdout). */
  flush(): Promise<void>;
}

export function createAuditLog(path: string | undefined, onError: (err: Error) => void): AuditLog {
  const dest = pino.destination({ dest: path ?? 1, sync: false, mkdir: path !== undefined });
  dest.on('error', onError);
  return auditLogTo(dest);
}

/** A line whose text is made when the destination writes it out (AuditSink.writeLine):
 *  formatting a batch of lines together keeps the serializer's code and data warm, where one
 *  line made as each connection closes found them cold (docs/benchmarks.md). */
export interface PendingLine {
  text(): string;
}

/** A destination that takes pending lines (src/ops/audit-sink.ts). */
interface LineDestination extends DestinationStream {
  writeLine(line: PendingLine): void;
}

type AnyRecord = AuditRecord | SystemAuditRecord | GrantAuditRecord;

/** The line pino wrote with this log's settings: no level, no base fields, `time` first, then
 *  the record's own fields in order. The record is a flat object of strings, numbers, null and
 *  string arrays, which JSON.stringify handles exactly like pino, at a fraction of the cost. */
const lineOf = (time: string, record: AnyRecord): string => `{"time":"${time}",${JSON.stringify(record).slice(1)}\n`;

class RecordLine implements PendingLine {
  // The time is taken now, when the line is written, not when it is formatted.
  readonly #time = isoNow();
  readonly #record: AnyRecord;
  constructor(record: AnyRecord) {
    this.#record = record;
  }
  text(): string {
    return lineOf(this.#time, this.#record);
  }
}

/**
 * Audit lines go to `dest`: pino's destination from createAuditLog (one `write` per line,
 * synchronously, as pino would call it), or the AuditSink, which formats the line when it
 * writes its batch out. Either way the record is not looked at again after write(): every
 * caller builds a fresh one.
 */
export function auditLogTo(dest: DestinationStream): AuditLog {
  const flushable = dest as DestinationStream & { flush?: (cb: (err?: Error) => void) => void };
  const lines = typeof (dest as Partial<LineDestination>).writeLine === 'function' ? (dest as LineDestination) : undefined;
  return {
    write: (record) => {
      if (lines) lines.writeLine(new RecordLine(record));
      else dest.write(lineOf(isoNow(), record));
      // Lines about the proxy itself (reloads, a resumed log) are rare: written at once rather
      // than with the next batch of request lines (src/ops/audit-sink.ts).
      if (record.client === 'system' && typeof flushable.flush === 'function') flushable.flush(() => undefined);
    },
    flush: () =>
      new Promise((resolve) => {
        if (typeof flushable.flush === 'function') flushable.flush(() => resolve());
        else resolve();
      }),
  };
}

// new Date().toISOString() costs more than the rest of the line's timestamp handling: the
// part up to the second is cached and the milliseconds appended.
let cachedSecond = -1;
let cachedPrefix = '';

/** The current time as toISOString() writes it ("2024-05-01T12:00:00.123Z"). */
export function isoNow(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const ms = now - second * 1000;
  return `${cachedPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

/** Operational logs (start, reloads, errors): separate from the audit stream, on stderr. */
export function createOpsLog(level: string): Logger {
  return pino({ level, base: { svc: 'gitlab-scope-proxy' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}
