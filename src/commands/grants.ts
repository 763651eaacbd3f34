// `gitlab-scope-proxy grants list|revoke`: the OAuth grants in the shared store (REDIS_URL or
// SQLITE_FILE), and revoking one grant or every grant of a client. A revocation is written to
// the audit log (AUDIT_LOG, else standard error) naming the client, grant and approver; the
// running proxies see it on the next request, since they ask the same store.
import pino from 'pino';
import { auditLogTo, type AuditLog } from '../audit/audit.ts';
import type { Grant, Store } from '../store/store.ts';

export interface GrantsIo {
  store: Store;
  auditLog: string | undefined;
  out: (line: string) => void;
  now?: number;
}

const when = (ms: number): string => new Date(ms).toISOString().slice(0, 19) + 'Z';

export function grantStatus(g: Grant, now: number): string {
  if (g.revokedAt !== undefined) return `revoked ${when(g.revokedAt)} (${g.revokedReason ?? 'revoked'})`;
  return g.refreshExpiresAt <= now ? 'expired' : 'active';
}

export async function listGrants(io: GrantsIo, json: boolean): Promise<number> {
  const now = io.now ?? Date.now();
  const grants = await io.store.listGrants();
  if (json) {
    io.out(JSON.stringify(grants.map((g) => ({ ...g, status: grantStatus(g, now).split(' ')[0] }))));
    return 0;
  }
  const rows = [['ID', 'CLIENT', 'APPROVER', 'CREATED', 'REFRESH EXPIRES', 'STATUS'],
    ...grants.map((g) => [g.id, g.client, g.approver.username, when(g.createdAt), when(g.refreshExpiresAt), grantStatus(g, now)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) io.out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  return 0;
}

/** Revokes by id or every active grant of a client; exit 1 when nothing matched. */
export async function revokeGrants(io: GrantsIo, target: { id?: string; client?: string }): Promise<number> {
  const now = io.now ?? Date.now();
  const all = await io.store.listGrants();
  const chosen = all.filter((g) => (target.id ? g.id === target.id : g.client === target.client) && g.revokedAt === undefined);
  if (chosen.length === 0) {
    io.out(target.id ? `no active grant ${target.id}` : `no active grant for client ${target.client}`);
    return 1;
  }
  const audit = openAudit(io.auditLog);
  for (const g of chosen) {
    await io.store.revokeGrant(g.id, 'revoked', now);
    audit.write({ client: g.client, decision: 'local', reason: 'oauth-revoked-by-operator', oauth: { grant: g.id, approver: g.approver.username } });
    io.out(`revoked ${g.id} (${g.client}, approved by ${g.approver.username})`);
  }
  await audit.flush();
  return 0;
}

function openAudit(path: string | undefined): AuditLog {
  return auditLogTo(pino.destination({ dest: path ?? 2, sync: true, mkdir: path !== undefined }));
}
