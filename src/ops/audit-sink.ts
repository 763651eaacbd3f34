// Where audit lines go (AUDIT_LOG, or stdout), written so that a failure is seen and counted:
//   - lines are queued and written in order by one asynchronous write at a time, at most one
//     write every BATCH_MS: the lines of every request that ended meanwhile go out in one
//     system call instead of one each (each write costs a thread-pool round trip, which
//     under load cost more CPU than building the lines); flush() and close() write at once;
//   - a request's line may come as a PendingLine, formatted with the others of its batch
//     (at the write, or once FORMAT_EVERY of them wait) rather than one at a time;
//   - a failed write (disk full, volume gone) marks the sink not writable, counts the lines
//     that were lost, and closes the file; the file is then reopened every `retryMs` (stdout
//     is simply tried again);
//   - once reopened, one probe line (the owner's "audit-resumed" record, carrying the number
//     of lost lines) must be written before the sink counts as writable again;
//   - a queue that grows past `maxQueueBytes` (a reader that does not keep up) drops lines,
//     counted as lost, and reports not writable until it has drained.
// With AUDIT_ON_FAILURE=refuse the server refuses requests while `writable` is false.
import { closeSync, fsync, mkdirSync, openSync, write } from 'node:fs';
import { dirname } from 'node:path';
import type { PendingLine } from '../audit/audit.ts';

export interface AuditSinkEvents {
  /** A write or a reopen failed. Called once per failure, not per retry. */
  onError: (err: NodeJS.ErrnoException) => void;
  /** `n` lines did not reach the log. */
  onLost: (n: number) => void;
  /** The destination opened again: write the probe line now (through the same sink). */
  onProbe: (lost: number, since: Date) => void;
  /** `writable` changed. */
  onState: (writable: boolean) => void;
}

export interface AuditSinkOptions {
  retryMs?: number;
  maxQueueBytes?: number;
}

type State = 'ok' | 'failed' | 'probing';

/** Longest a line waits in the queue before a write starts (flush() does not wait). */
const BATCH_MS = 20;
/** Pending lines formatted at once: enough for a warm batch, few enough that the queue's byte
 *  count (maxQueueBytes) is never far behind. */
const FORMAT_EVERY = 64;

export class AuditSink {
  readonly #path: string | undefined;
  readonly #events: AuditSinkEvents;
  readonly #retryMs: number;
  readonly #maxQueueBytes: number;
  #fd: number | null;
  #state: State = 'ok';
  #queue: string[] = [];
  /** Lines after the queue's, not yet formatted (at most FORMAT_EVERY). */
  #pending: PendingLine[] = [];
  #queuedBytes = 0;
  #writing = false;
  #timer: NodeJS.Timeout | null = null;
  #idle: (() => void)[] = [];
  #lost = 0;
  #since: Date | null = null;
  #retry: NodeJS.Timeout | null = null;
  #probePending = false;
  #closed = false;
  #overflowing = false;

  /** Opens `path` for appending (creating its directory), or uses stdout when undefined.
   *  Throws if the file cannot be opened: the proxy does not start without its audit log. */
  constructor(path: string | undefined, events: AuditSinkEvents, opts: AuditSinkOptions = {}) {
    this.#path = path;
    this.#events = events;
    this.#retryMs = opts.retryMs ?? 1000;
    this.#maxQueueBytes = opts.maxQueueBytes ?? 16 * 1024 * 1024;
    if (path === undefined) {
      this.#fd = 1;
    } else {
      mkdirSync(dirname(path), { recursive: true });
      this.#fd = openSync(path, 'a');
    }
  }

  get writable(): boolean {
    return this.#state === 'ok' && !this.#overflowing;
  }

  /** pino's destination interface: one call per line. */
  write(chunk: string): boolean {
    if (this.#pending.length > 0) this.#formatPending();
    if (this.#refuse()) return true;
    this.#enqueue(chunk);
    this.#schedule();
    return true;
  }

  /** A line formatted later, with its batch (src/audit/audit.ts auditLogTo). */
  writeLine(line: PendingLine): void {
    if (this.#refuse()) return;
    this.#pending.push(line);
    if (this.#pending.length >= FORMAT_EVERY) this.#formatPending();
    this.#schedule();
  }

  /** Closed or failed: the line is lost (and counted). Otherwise it counts as the probe. */
  #refuse(): boolean {
    if (this.#closed || this.#state === 'failed') {
      this.#lose(1);
      return true;
    }
    if (this.#probePending) this.#probePending = false;
    return false;
  }

  #enqueue(chunk: string): void {
    if (this.#queuedBytes + chunk.length > this.#maxQueueBytes) {
      this.#lose(1);
      this.#setOverflow(true);
      return;
    }
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.length;
  }

  #formatPending(): void {
    const lines = this.#pending;
    this.#pending = [];
    for (const line of lines) this.#enqueue(line.text());
  }

  /** Calls back when every line queued so far has been handed to the OS (and, for a file,
   *  synced to disk). */
  flush(cb: (err?: Error) => void): void {
    const done = (): void => {
      if (this.#fd === null || this.#path === undefined) return cb();
      fsync(this.#fd, () => cb());
    };
    if (!this.#writing && this.#queue.length === 0 && this.#pending.length === 0) return done();
    this.#idle.push(done);
    if (!this.#writing) this.#drainNow();
  }

  /** Reopens the file (after logrotate moved it away); a no-op for stdout. */
  reopen(): void {
    if (this.#path === undefined || this.#closed || this.#state !== 'ok') return;
    try {
      const fd = openSync(this.#path, 'a');
      const old = this.#fd;
      this.#fd = fd;
      if (old !== null && !this.#writing) closeSync(old);
      else if (old !== null) this.#idle.push(() => closeSync(old));
    } catch (err) {
      this.#fail(err as NodeJS.ErrnoException, 0);
    }
  }

  /** Flushes and closes; later lines count as lost. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.flush(() => {
        this.#closed = true;
        if (this.#retry) clearTimeout(this.#retry);
        if (this.#fd !== null && this.#path !== undefined) closeSync(this.#fd);
        this.#fd = null;
        resolve();
      });
    });
  }

  #schedule(): void {
    if (this.#writing || this.#timer !== null) return;
    this.#timer = setTimeout(this.#drainNow, BATCH_MS);
  }

  readonly #drainNow = (): void => {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#writing) this.#drain();
  };

  #drain(): void {
    if (this.#pending.length > 0) this.#formatPending();
    if (this.#fd === null || this.#queue.length === 0) {
      this.#writing = false;
      this.#setOverflow(false);
      const waiters = this.#idle;
      this.#idle = [];
      for (const w of waiters) w();
      return;
    }
    this.#writing = true;
    const lines = this.#queue.length;
    const buf = Buffer.from(this.#queue.length === 1 ? this.#queue[0]! : this.#queue.join(''));
    this.#queue = [];
    this.#queuedBytes = 0;
    const fd = this.#fd;
    writeAll(fd, buf, 0, (err) => {
      if (err) {
        this.#fail(err, lines);
      } else if (this.#state === 'probing') {
        this.#state = 'ok';
        this.#lost = 0;
        this.#since = null;
        this.#events.onState(true);
      }
      // More lines arrived during the write: batch them with what follows, unless someone
      // waits for a flush. Nothing left: #drain settles (waiters, overflow).
      if ((this.#queue.length > 0 || this.#pending.length > 0) && this.#idle.length === 0 && this.#fd !== null) {
        this.#writing = false;
        this.#schedule();
      } else {
        this.#drain();
      }
    });
  }

  #fail(err: NodeJS.ErrnoException, lines: number): void {
    const wasProbing = this.#state === 'probing';
    // A failed probe line is not an audit line of its own: do not count it again.
    this.#lose(lines - (wasProbing ? 1 : 0) + this.#queue.length + this.#pending.length);
    this.#queue = [];
    this.#pending = [];
    this.#queuedBytes = 0;
    if (!wasProbing) this.#events.onError(err);
    this.#state = 'failed';
    this.#since ??= new Date();
    if (!wasProbing) this.#events.onState(false);
    if (this.#path !== undefined && this.#fd !== null) {
      try {
        closeSync(this.#fd);
      } catch {
        // already unusable
      }
    }
    // stdout keeps its descriptor: the retry only probes it again.
    if (this.#path !== undefined) this.#fd = null;
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retry || this.#closed) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.#closed || this.#state !== 'failed') return;
      if (this.#path !== undefined) {
        try {
          this.#fd = openSync(this.#path, 'a');
        } catch {
          this.#scheduleRetry();
          return;
        }
      }
      this.#state = 'probing';
      this.#probePending = true;
      this.#events.onProbe(this.#lost, this.#since ?? new Date());
      if (this.#probePending) {
        // The owner wrote nothing: count the sink as writable on the open alone.
        this.#probePending = false;
        this.#state = 'ok';
        this.#events.onState(true);
      }
    }, this.#retryMs);
    this.#retry.unref();
  }

  #lose(n: number): void {
    if (n <= 0) return;
    this.#lost += n;
    this.#events.onLost(n);
  }

  #setOverflow(on: boolean): void {
    if (this.#overflowing === on) return;
    this.#overflowing = on;
    if (this.#state === 'ok') this.#events.onState(!on);
  }
}

/** Writes all of `buf`, retrying partial writes and EAGAIN (a non-blocking stdout pipe). */
function writeAll(fd: number, buf: Buffer, offset: number, cb: (err: NodeJS.ErrnoException | null) => void): void {
  write(fd, buf, offset, buf.length - offset, null, (err, n) => {
    if (err) {
      if (err.code === 'EAGAIN') {
        setTimeout(() => writeAll(fd, buf, offset, cb), 10);
        return;
      }
      cb(err);
      return;
    }
    if (offset + n < buf.length) writeAll(fd, buf, offset + n, cb);
    else cb(null);
  });
}
