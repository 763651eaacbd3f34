// The store in a SQLite file (Node's built-in node:sqlite, no native addon): the default, for
// one replica or several sharing a volume. Writes that must not race run inside
// BEGIN IMMEDIATE transactions, which SQLite serialises across processes; busy_timeout makes a
// second process wait for the lock instead of failing.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { CodeRecord, ConsumeResult, Grant, LimitCheck, LimitResult, RotateResult, Store } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS codes (
  hash TEXT PRIMARY KEY, record TEXT NOT NULL, expires_at INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS grants (
  id TEXT PRIMARY KEY, grant_json TEXT NOT NULL, refresh_hash TEXT NOT NULL, refresh_expires_at INTEGER NOT NULL,
  revoked_at INTEGER, revoked_reason TEXT);
CREATE TABLE IF NOT EXISTS old_refresh (hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS limit_rates (key TEXT PRIMARY KEY, tat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS limit_slots (
  client TEXT NOT NULL, member TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (client, member));
`;
/** Consumed codes are kept this long after they expire, so that a late replay is still seen. */
const USED_CODE_RETENTION_MS = 24 * 3600_000;

interface GrantRow { grant_json: string; refresh_hash: string; refresh_expires_at: number; revoked_at: number | null; revoked_reason: string | null }

export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #q: Record<string, StatementSync>;

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.#db = new DatabaseSync(file);
    this.#db.exec('PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    this.#db.exec(SCHEMA);
    const p = (sql: string): StatementSync => this.#db.prepare(sql);
    this.#q = {
      putCode: p('INSERT INTO codes (hash, record, expires_at) VALUES (?, ?, ?)'),
      useCode: p('UPDATE codes SET used = 1 WHERE hash = ? AND used = 0 AND expires_at > ?'),
      getCode: p('SELECT record, used, expires_at FROM codes WHERE hash = ?'),
      purgeCodes: p('DELETE FROM codes WHERE expires_at < ?'),
      putGrant: p('INSERT INTO grants (id, grant_json, refresh_hash, refresh_expires_at) VALUES (?, ?, ?, ?)'),
      getGrant: p('SELECT grant_json, refresh_hash, refresh_expires_at, revoked_at, revoked_reason FROM grants WHERE id = ?'),
      listGrants: p('SELECT grant_json, refresh_hash, refresh_expires_at, revoked_at, revoked_reason FROM grants ORDER BY rowid'),
      setRefresh: p('UPDATE grants SET refresh_hash = ?, refresh_expires_at = ? WHERE id = ?'),
      addOld: p('INSERT OR IGNORE INTO old_refresh (hash, grant_id) VALUES (?, ?)'),
      isOld: p('SELECT 1 AS old FROM old_refresh WHERE hash = ? AND grant_id = ?'),
      revoke: p('UPDATE grants SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL'),
      getCounter: p('SELECT value, expires_at FROM counters WHERE key = ?'),
      setCounter: p('INSERT INTO counters (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at'),
      purgeCounters: p('DELETE FROM counters WHERE expires_at <= ?'),
      purgeSlots: p('DELETE FROM limit_slots WHERE client = ? AND expires_at <= ?'),
      countSlots: p('SELECT count(*) AS n FROM limit_slots WHERE client = ?'),
      putSlot: p('INSERT INTO limit_slots (client, member, expires_at) VALUES (?, ?, ?) ON CONFLICT (client, member) DO UPDATE SET expires_at = excluded.expires_at'),
      dropSlot: p('DELETE FROM limit_slots WHERE client = ? AND member = ?'),
      getRate: p('SELECT tat FROM limit_rates WHERE key = ?'),
      setRate: p('INSERT INTO limit_rates (key, tat) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET tat = excluded.tat'),
      purgeRates: p('DELETE FROM limit_rates WHERE tat < ?'),
    };
  }

  putCode(codeHash: string, record: CodeRecord): Promise<void> {
    this.#q.purgeCodes!.run(Date.now() - USED_CODE_RETENTION_MS);
    this.#q.putCode!.run(codeHash, JSON.stringify(record), record.expiresAt);
    return Promise.resolve();
  }

  consumeCode(codeHash: string, now: number): Promise<ConsumeResult> {
    // One UPDATE decides: SQLite runs it under its write lock, so only one caller sees a change.
    const won = Number(this.#q.useCode!.run(codeHash, now).changes) === 1;
    const row = this.#q.getCode!.get(codeHash) as { record: string; used: number; expires_at: number } | undefined;
    if (!row) return Promise.resolve({ status: 'unknown' });
    const record = JSON.parse(row.record) as CodeRecord;
    if (won) return Promise.resolve({ status: 'ok', record });
    return Promise.resolve(row.used === 1 ? { status: 'replayed', record } : { status: 'unknown' });
  }

  createGrant(grant: Grant, refreshHash: string): Promise<void> {
    this.#q.putGrant!.run(grant.id, JSON.stringify(grant), refreshHash, grant.refreshExpiresAt);
    return Promise.resolve();
  }

  rotateRefresh(grantId: string, presentedHash: string, nextHash: string, nextExpiresAt: number, now: number): Promise<RotateResult> {
    return Promise.resolve(this.#transaction((): RotateResult => {
      const row = this.#q.getGrant!.get(grantId) as GrantRow | undefined;
      if (!row) return { status: 'unknown' };
      const grant = toGrant(row);
      if (row.refresh_hash !== presentedHash) {
        if (!this.#q.isOld!.get(presentedHash, grantId)) return { status: 'unknown' };
        if (grant.revokedAt !== undefined) return { status: 'revoked', grant };
        this.#q.revoke!.run(now, 'refresh-reuse', grantId);
        return { status: 'reused', grant: { ...grant, revokedAt: now, revokedReason: 'refresh-reuse' } };
      }
      if (grant.revokedAt !== undefined) return { status: 'revoked', grant };
      if (grant.refreshExpiresAt <= now) return { status: 'expired', grant };
      this.#q.setRefresh!.run(nextHash, nextExpiresAt, grantId);
      this.#q.addOld!.run(presentedHash, grantId);
      return { status: 'ok', grant: { ...grant, refreshExpiresAt: nextExpiresAt } };
    }));
  }

  getGrant(id: string): Promise<Grant | undefined> {
    const row = this.#q.getGrant!.get(id) as GrantRow | undefined;
    return Promise.resolve(row ? toGrant(row) : undefined);
  }

  listGrants(): Promise<Grant[]> {
    return Promise.resolve((this.#q.listGrants!.all() as unknown as GrantRow[]).map(toGrant));
  }

  revokeGrant(id: string, reason: string, now: number): Promise<Grant | undefined> {
    this.#q.revoke!.run(now, reason, id);
    return this.getGrant(id);
  }

  increment(key: string, by: number, ttlMs: number): Promise<number> {
    return Promise.resolve(this.#transaction(() => {
      const now = Date.now();
      const row = this.#q.getCounter!.get(key) as { value: number; expires_at: number } | undefined;
      const live = row !== undefined && row.expires_at > now;
      const value = (live ? row.value : 0) + by;
      this.#q.setCounter!.run(key, value, live ? row.expires_at : now + ttlMs);
      return value;
    }));
  }

  // The shared limits, as src/store/redis.ts keeps them (the same GCRA and leased slots), for
  // processes sharing one file; the proxy itself uses them only with REDIS_URL.
  admitRequest(client: string, check: LimitCheck): Promise<LimitResult> {
    return Promise.resolve(this.#transaction((): LimitResult => {
      const now = Date.now();
      const { rate, slot } = check;
      if (slot) {
        this.#q.purgeSlots!.run(client, now);
        if (Number((this.#q.countSlots!.get(client) as { n: number }).n) >= slot.max) return { admitted: false, limit: 'concurrency' };
      }
      if (rate) {
        const key = `${client}\0${rate.id}`;
        const tat = Math.max(now, (this.#q.getRate!.get(key) as { tat: number } | undefined)?.tat ?? now);
        const wait = tat - (rate.burst - 1) * rate.intervalMs - now;
        if (wait > 0) return { admitted: false, limit: 'rate', retryAfterMs: Math.ceil(wait) };
        this.#q.setRate!.run(key, tat + rate.intervalMs);
      }
      if (slot) this.#q.putSlot!.run(client, slot.member, now + slot.leaseMs);
      return { admitted: true };
    }));
  }

  holdSlots(client: string, members: string[], leaseMs: number): Promise<void> {
    this.#transaction(() => {
      const expires = Date.now() + leaseMs;
      for (const member of members) this.#q.putSlot!.run(client, member, expires);
    });
    return Promise.resolve();
  }

  releaseSlot(client: string, member: string): Promise<void> {
    this.#q.dropSlot!.run(client, member);
    return Promise.resolve();
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#q.purgeCounters!.run(Date.now());
    this.#q.purgeRates!.run(Date.now());
    this.#db.close();
    return Promise.resolve();
  }

  #transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }
}

function toGrant(row: GrantRow): Grant {
  const stored = JSON.parse(row.grant_json) as Grant;
  return {
    ...stored,
    refreshExpiresAt: row.refresh_expires_at,
    revokedAt: row.revoked_at ?? undefined,
    revokedReason: row.revoked_reason ?? undefined,
  };
}
