// The audit sink on its own: lines formatted late (PendingLine) keep their order with lines
// written as text, reach the file on flush, and count as lost when the write fails. Through a
// running proxy: test/faults.test.ts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditSink, type AuditSinkEvents } from './audit-sink.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function events(): AuditSinkEvents & { lost: number; errors: string[] } {
  const e = {
    lost: 0,
    errors: [] as string[],
    onError: (err: NodeJS.ErrnoException) => void e.errors.push(err.code ?? err.message),
    onLost: (n: number) => void (e.lost += n),
    onProbe: () => undefined,
    onState: () => undefined,
  };
  return e;
}

/** A pending line that says when it was formatted. */
function pending(text: string, formatted: string[]): { text(): string } {
  return {
    text: () => {
      formatted.push(text);
      return `${text}\n`;
    },
  };
}

/** A sink writing to a new file in a temporary directory (removed after the test). */
function sinkInTempDir(): { sink: AuditSink; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gsp-sink-'));
  dirs.push(dir);
  const file = join(dir, 'audit.log');
  return { sink: new AuditSink(file, events()), file };
}

const flushed = (sink: AuditSink): Promise<void> => new Promise((resolve) => sink.flush(() => resolve()));

describe('AuditSink', () => {
  it('writes pending lines and text lines in the order they came, formatting pending ones only when they are written out', async () => {
    const { sink, file } = sinkInTempDir();
    const formatted: string[] = [];
    sink.writeLine(pending('a', formatted));
    sink.writeLine(pending('b', formatted));
    expect(formatted).toEqual([]);
    sink.write('c\n');
    sink.writeLine(pending('d', formatted));
    await flushed(sink);
    expect(formatted).toEqual(['a', 'b', 'd']);
    expect(readFileSync(file, 'utf8')).toBe('a\nb\nc\nd\n');
    await sink.close();
  });

  it('formats a batch once 64 lines wait, without waiting for the write', async () => {
    const { sink, file } = sinkInTempDir();
    const formatted: string[] = [];
    for (let i = 0; i < 63; i++) sink.writeLine(pending(String(i), formatted));
    expect(formatted).toHaveLength(0);
    sink.writeLine(pending('63', formatted));
    expect(formatted).toHaveLength(64);
    await flushed(sink);
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toEqual(Array.from({ length: 64 }, (_, i) => String(i)));
    await sink.close();
  });

  it('counts pending lines as lost when the write fails, and lines after close too', async () => {
    const e = events();
    // /dev/full accepts the open and fails every write with ENOSPC: a real full disk.
    const sink = new AuditSink('/dev/full', e, { retryMs: 60_000 });
    const formatted: string[] = [];
    sink.write('first\n');
    for (const t of ['x', 'y', 'z']) sink.writeLine(pending(t, formatted));
    await flushed(sink);
    expect(e.errors).toEqual(['ENOSPC']);
    expect(e.lost).toBe(4);
    expect(sink.writable).toBe(false);
    sink.writeLine(pending('after', formatted));
    expect(e.lost).toBe(5);
    await sink.close();
  });
});
