// Reads audit logs for `learn` and `audit`: files (plain or gzip, told apart by the ".gz"
// extension or the gzip magic bytes, so rotated "audit.log.1" and "audit.log.2.gz" both
// work) or standard input, one parsed record at a time, so a large log is never held whole.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { AuditRecord } from '../audit/audit.ts';

export interface AuditEntry extends AuditRecord {
  time: string;
}

export interface ReadStats {
  lines: number;
  /** Lines that are not audit records (other logs mixed in, truncated writes). */
  skipped: number;
  /** Lines about the proxy itself (client "system": reloads, audit recovery), not requests. */
  system?: number;
  /** Inputs that could not be read whole: "file: reason". */
  errors: string[];
}

const GZIP_MAGIC = [0x1f, 0x8b];

/** Yields every audit record in `inputs` ("-" or no input at all: standard input). */
export async function* readAudit(inputs: readonly string[], stats: ReadStats, stdin: Readable = process.stdin): AsyncGenerator<AuditEntry> {
  for (const input of inputs.length > 0 ? inputs : ['-']) {
    let lineNo = 0;
    try {
      const raw = input === '-' ? stdin : createReadStream(input);
      const text = await decompressed(raw, input.endsWith('.gz'));
      for await (const line of createInterface({ input: text, crlfDelay: Infinity })) {
        lineNo++;
        if (line.trim() === '') continue;
        stats.lines++;
        const entry = parseLine(line);
        if (entry === 'system') stats.system = (stats.system ?? 0) + 1;
        else if (entry) yield entry;
        else stats.skipped++;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      stats.errors.push(`${input === '-' ? 'standard input' : input}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}${lineNo ? ` (after line ${lineNo})` : ''}`);
    }
  }
}

/** The stream as text: gunzipped when it is named .gz or starts with the gzip magic. */
async function decompressed(raw: Readable, gzipByName: boolean): Promise<Readable> {
  const chunks = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < GZIP_MAGIC.length && !done) {
    const next = await chunks.next();
    if (next.done) done = true;
    else head = Buffer.concat([head, Buffer.from(next.value)]);
  }
  const rest = Readable.from((async function* () {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const next = await chunks.next();
      if (next.done) return;
      yield Buffer.from(next.value);
    }
  })());
  const gzip = gzipByName || (head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]);
  if (!gzip) return rest;
  const gunzip = createGunzip();
  rest.on('error', (err) => gunzip.destroy(err));
  return rest.pipe(gunzip);
}

function parseLine(line: string): AuditEntry | 'system' | undefined {
  if (!line.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const r = value as Partial<AuditEntry>;
  if ((r.client as string | null | undefined) === 'system' && r.reqId === undefined) return 'system';
  const ok = typeof r.time === 'string' && !Number.isNaN(Date.parse(r.time))
    && typeof r.method === 'string' && typeof r.path === 'string' && typeof r.decision === 'string'
    && (r.client === null || typeof r.client === 'string');
  if (!ok) return undefined;
  return {
    ...(r as AuditEntry),
    status: typeof r.status === 'number' ? r.status : 0,
    bytesIn: typeof r.bytesIn === 'number' ? r.bytesIn : 0,
    bytesOut: typeof r.bytesOut === 'number' ? r.bytesOut : 0,
  };
}

/** "2024-05-01T10:00:00Z" as an instant, or "24h", "7d", "30m" as that long before `now`. */
export function parseTime(text: string, now = Date.now()): number {
  const rel = /^([0-9]+)([smhdw])$/.exec(text);
  if (rel) {
    const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[rel[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return now - Number(rel[1]) * unit * 1000;
  }
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(at)) throw new Error(`bad time ${JSON.stringify(text)} (use an ISO 8601 time such as 2024-05-01T10:00:00Z, or 24h, 7d, 30m ago)`);
  return at;
}
