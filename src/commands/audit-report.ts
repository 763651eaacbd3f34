// `audit`: a summary of audit logs per client — calls, denials and would-denies, the most
// used endpoints (as rule paths, like `learn`), the status mix, first and last seen, and the
// data volume — as a table for people or JSON for machines.
import type { Readable } from 'node:stream';
import { generalizePath } from '../policy/generalize.ts';
import { readAudit, type AuditEntry, type ReadStats } from './audit-lines.ts';

export interface AuditReportOptions {
  inputs: readonly string[];
  client?: string | undefined;
  /** Epoch milliseconds, inclusive. */
  since?: number | undefined;
  /** Epoch milliseconds, inclusive. */
  until?: number | undefined;
  decisions?: ReadonlySet<string> | undefined;
  top?: number;
  json?: boolean;
  out?: (text: string) => void;
  warn?: (text: string) => void;
  /** Read for "-" or no input; default process.stdin. */
  stdin?: Readable | undefined;
}

export interface EndpointSummary {
  /** "GET /api/v4/projects/:id". */
  endpoint: string;
  calls: number;
  denied: number;
  wouldDeny: number;
}

export interface ClientSummary {
  /** null: requests no client token could be tied to. */
  client: string | null;
  calls: number;
  allowed: number;
  denied: number;
  wouldDeny: number;
  local: number;
  firstSeen: string;
  lastSeen: string;
  bytesIn: number;
  bytesOut: number;
  /** Status code -> calls. */
  statuses: Record<string, number>;
  topEndpoints: EndpointSummary[];
}

export interface AuditSummary {
  /** Audit records read, whatever the filters. */
  records: number;
  /** Records the filters kept. */
  matched: number;
  skippedLines: number;
  /** Lines about the proxy itself (reloads, audit recovery), not counted as requests. */
  systemLines: number;
  errors: string[];
  clients: ClientSummary[];
}

interface Acc extends Omit<ClientSummary, 'topEndpoints'> {
  endpoints: Map<string, EndpointSummary>;
}

export async function summarize(records: AsyncIterable<AuditEntry>, opts: AuditReportOptions, stats: ReadStats): Promise<AuditSummary> {
  const byClient = new Map<string | null, Acc>();
  let read = 0;
  let matched = 0;
  for await (const r of records) {
    read++;
    if (opts.client !== undefined && r.client !== opts.client) continue;
    if (opts.decisions && !opts.decisions.has(r.decision)) continue;
    const t = Date.parse(r.time);
    if (opts.since !== undefined && t < opts.since) continue;
    if (opts.until !== undefined && t > opts.until) continue;
    matched++;
    let acc = byClient.get(r.client);
    if (!acc) {
      acc = { client: r.client, calls: 0, allowed: 0, denied: 0, wouldDeny: 0, local: 0, firstSeen: r.time, lastSeen: r.time, bytesIn: 0, bytesOut: 0, statuses: {}, endpoints: new Map() };
      byClient.set(r.client, acc);
    }
    acc.calls++;
    if (r.decision === 'allow') acc.allowed++;
    else if (r.decision === 'deny') acc.denied++;
    else if (r.decision === 'would-deny') acc.wouldDeny++;
    else if (r.decision === 'local') acc.local++;
    if (t < Date.parse(acc.firstSeen)) acc.firstSeen = r.time;
    if (t > Date.parse(acc.lastSeen)) acc.lastSeen = r.time;
    acc.bytesIn += r.bytesIn;
    acc.bytesOut += r.bytesOut;
    const status = String(r.status);
    acc.statuses[status] = (acc.statuses[status] ?? 0) + 1;
    const endpoint = r.path === '' ? '(unparseable request)' : `${r.method} ${generalizePath(r.path)}`;
    const e = acc.endpoints.get(endpoint) ?? { endpoint, calls: 0, denied: 0, wouldDeny: 0 };
    e.calls++;
    if (r.decision === 'deny') e.denied++;
    if (r.decision === 'would-deny') e.wouldDeny++;
    acc.endpoints.set(endpoint, e);
  }
  const top = opts.top ?? 10;
  const clients = [...byClient.values()]
    .sort((a, b) => (a.client === null ? 1 : b.client === null ? -1 : a.client.localeCompare(b.client)))
    .map(({ endpoints, statuses, ...rest }): ClientSummary => ({
      ...rest,
      statuses: Object.fromEntries(Object.entries(statuses).sort(([a], [b]) => a.localeCompare(b))),
      topEndpoints: [...endpoints.values()].sort((a, b) => b.calls - a.calls || a.endpoint.localeCompare(b.endpoint)).slice(0, top),
    }));
  return { records: read, matched, skippedLines: stats.skipped, systemLines: stats.system ?? 0, errors: stats.errors, clients };
}

/** Exit codes: 0 done; 1 nothing matched the filters. */
export async function auditReport(opts: AuditReportOptions): Promise<number> {
  const out = opts.out ?? ((t) => process.stdout.write(t));
  const warn = opts.warn ?? ((t) => process.stderr.write(t));
  const stats: ReadStats = { lines: 0, skipped: 0, errors: [] };
  const summary = await summarize(readAudit(opts.inputs, stats, opts.stdin), opts, stats);
  for (const e of summary.errors) warn(`warning: ${e}\n`);
  if (opts.json) out(JSON.stringify(summary, null, 2) + '\n');
  else out(table(summary));
  return summary.matched > 0 ? 0 : 1;
}

function table(s: AuditSummary): string {
  if (s.clients.length === 0) return `no audit records match (${s.records} read)\n`;
  const head = ['client', 'calls', 'allow', 'deny', 'would-deny', 'first seen', 'last seen', 'in', 'out'];
  const rows = s.clients.map((c) => [
    c.client ?? '(none)', String(c.calls), String(c.allowed), String(c.denied), String(c.wouldDeny),
    c.firstSeen, c.lastSeen, bytes(c.bytesIn), bytes(c.bytesOut),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([1, 2, 3, 4, 7, 8]);
  const line = (cells: string[]): string =>
    cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(head), ...rows.map(line), ''];
  for (const c of s.clients) {
    out.push(`${c.client ?? '(none): requests without a valid client token'}`);
    out.push(`  status  ${Object.entries(c.statuses).map(([code, n]) => `${code}: ${n}`).join('  ')}`);
    out.push('  top endpoints');
    const w = Math.max(...c.topEndpoints.map((e) => String(e.calls).length));
    for (const e of c.topEndpoints) {
      const notes = [e.denied ? `${e.denied} denied` : '', e.wouldDeny ? `${e.wouldDeny} would-deny` : ''].filter(Boolean).join(', ');
      out.push(`    ${String(e.calls).padStart(w)}  ${e.endpoint}${notes ? `  (${notes})` : ''}`);
    }
    out.push('');
  }
  if (s.skippedLines > 0) out.push(`${s.skippedLines} lines were not audit records and were skipped`);
  return out.join('\n').replace(/\n*$/, '\n');
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
