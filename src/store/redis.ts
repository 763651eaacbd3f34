// The store in Redis (REDIS_URL): for several replicas behind a load balancer. Operations that
// must not race are single Redis commands (SET NX) or Lua scripts, which Redis runs atomically.
// Keys: gsp:code:<hash>, gsp:code-used:<hash>, gsp:grant:<id> (hash), gsp:grant-old:<id> (set
// of retired refresh-token hashes), gsp:grants (set of grant ids), gsp:counter:<key>, and the
// shared limits: gsp:limit:{<client>}:slots (sorted set: slot holder -> lease expiry) and
// gsp:limit:{<client>}:rate:<settings> (the bucket's theoretical arrival time). The braces
// keep one client's keys in one Redis Cluster slot, as the admission script needs.
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import type { CodeRecord, ConsumeResult, Grant, LimitCheck, LimitResult, RotateResult, Store } from './store.ts';

const P = 'gsp:';
/** A grant is kept this long after its refresh token expires, for `grants list`. */
const GRANT_RETENTION_MS = 7 * 86_400_000;
/** Consumed-code markers outlive the code, so that a late replay is still recognised. */
const USED_CODE_RETENTION_MS = 24 * 3600_000;

// KEYS: grant, grant-old. ARGV: presented, next, nextExpiresAt, now, keepUntil.
const ROTATE = `
local cur = redis.call('HMGET', KEYS[1], 'refreshHash', 'refreshExpiresAt', 'revokedAt')
if not cur[1] then return 'unknown' end
if cur[1] ~= ARGV[1] then
  if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 'unknown' end
  if cur[3] then return 'revoked' end
  redis.call('HSET', KEYS[1], 'revokedAt', ARGV[4], 'revokedReason', 'refresh-reuse')
  return 'reused'
end
if cur[3] then return 'revoked' end
if tonumber(cur[2]) <= tonumber(ARGV[4]) then return 'expired' end
redis.call('HSET', KEYS[1], 'refreshHash', ARGV[2], 'refreshExpiresAt', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('PEXPIREAT', KEYS[2], ARGV[5])
return 'ok'`;

// KEYS: grant. ARGV: now, reason. Only a grant that exists and is not yet revoked changes.
const REVOKE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], 'revokedAt') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'revokedAt', ARGV[1], 'revokedReason', ARGV[2])
return 1`;

// KEYS: counter. ARGV: by, ttlMs.
const INCREMENT = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`;

// The shared limits (src/limits/shared-limits.ts). Time is Redis' own (TIME, in ms with
// microseconds), so replicas' clocks never matter; Redis 5+ replicates a script's effects, so a
// script may read TIME and then write.
// KEYS: slots, rate. ARGV: member ('' = no slot), max, leaseMs, interval ('' = no rate), tolerance.
// GCRA: the bucket is one number, the theoretical arrival time (tat) of the next request; a
// request is admitted while tat - now <= tolerance ((burst - 1) x interval), and moves tat on
// by one interval. Returns {'ok'}, {'concurrency'} or {'rate', ms until a request would pass}.
const ADMIT = script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
if ARGV[1] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return {'concurrency'} end
end
if ARGV[4] ~= '' then
  local interval = tonumber(ARGV[4])
  local tat = tonumber(redis.call('GET', KEYS[2]) or now)
  if tat < now then tat = now end
  local wait = tat - tonumber(ARGV[5]) - now
  if wait > 0 then return {'rate', math.ceil(wait)} end
  tat = tat + interval
  redis.call('SET', KEYS[2], string.format('%.3f', tat), 'PX', math.ceil(tat - now))
end
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {'ok'}`);

// KEYS: slots. ARGV: leaseMs, members... ZADD without XX: a slot that expired while Redis was
// out of reach comes back, since its request is still running.
const HOLD = script(`
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000 + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expires, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return #ARGV - 1`);

/** A limit command that takes longer than this counts as Redis being out of reach: requests
 *  must not wait on a Redis that hangs (the limiter then counts per replica). The client's own
 *  command timeout cannot serve: it stops waiting only for commands not yet sent. */
const LIMIT_COMMAND_TIMEOUT_MS = 1000;

class LimitTimeoutError extends Error {
  override name = 'TimeoutError';
}

/** `p`, or a TimeoutError after LIMIT_COMMAND_TIMEOUT_MS (the command's late answer is dropped). */
function inTime<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LimitTimeoutError(`no answer from Redis within ${LIMIT_COMMAND_TIMEOUT_MS} ms`)), LIMIT_COMMAND_TIMEOUT_MS);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function script(text: string): { text: string; sha: string } {
  return { text, sha: createHash('sha1').update(text).digest('hex') };
}

const limitKey = (client: string, rest: string): string => `${P}limit:{${encodeURIComponent(client)}}:${rest}`;

// Once connected, the client reconnects for as long as the proxy runs (every 2 s at most), so
// the store comes back by itself after a Redis restart or outage. While it is not connected,
// commands fail at once instead of queueing: a request never waits for a reconnection.
const newClient = (url: string, connected: () => boolean) => createClient({
  url,
  disableOfflineQueue: true,
  socket: { connectTimeout: 5000, reconnectStrategy: (retries: number) => (!connected() ? false : Math.min((retries + 1) * 100, 2000)) },
});
type Client = ReturnType<typeof newClient>;

export class RedisStore implements Store {
  readonly #redis: Client;

  private constructor(redis: Client) {
    this.#redis = redis;
  }

  /** Connects (and fails fast: one attempt, no endless reconnect loop before the first). */
  static async connect(url: string): Promise<RedisStore> {
    let connected = false;
    const redis = newClient(url, () => connected);
    // Errors surface on the command that failed; the client emits them too and must not crash us.
    redis.on('error', () => undefined);
    await redis.connect();
    connected = true;
    return new RedisStore(redis);
  }

  async putCode(codeHash: string, record: CodeRecord): Promise<void> {
    await this.#redis.set(`${P}code:${codeHash}`, JSON.stringify(record), { expiration: { type: 'PXAT', value: record.expiresAt + USED_CODE_RETENTION_MS } });
  }

  async consumeCode(codeHash: string, now: number): Promise<ConsumeResult> {
    const raw = await this.#redis.get(`${P}code:${codeHash}`);
    if (raw === null) return { status: 'unknown' };
    const record = JSON.parse(raw) as CodeRecord;
    // SET NX: of all replicas presenting this code, exactly one creates the marker.
    const won = await this.#redis.set(`${P}code-used:${codeHash}`, '1', { condition: 'NX', expiration: { type: 'PXAT', value: record.expiresAt + USED_CODE_RETENTION_MS } });
    if (won === null) return { status: 'replayed', record };
    if (record.expiresAt <= now) return { status: 'unknown' };
    return { status: 'ok', record };
  }

  async createGrant(grant: Grant, refreshHash: string): Promise<void> {
    const key = `${P}grant:${grant.id}`;
    await this.#redis.multi()
      .hSet(key, { json: JSON.stringify(grant), refreshHash, refreshExpiresAt: String(grant.refreshExpiresAt) })
      .pExpireAt(key, grant.refreshExpiresAt + GRANT_RETENTION_MS)
      .sAdd(`${P}grants`, grant.id)
      .exec();
  }

  async rotateRefresh(grantId: string, presentedHash: string, nextHash: string, nextExpiresAt: number, now: number): Promise<RotateResult> {
    const status = await this.#redis.eval(ROTATE, {
      keys: [`${P}grant:${grantId}`, `${P}grant-old:${grantId}`],
      arguments: [presentedHash, nextHash, String(nextExpiresAt), String(now), String(nextExpiresAt + GRANT_RETENTION_MS)],
    }) as RotateResult['status'];
    if (status === 'unknown') return { status };
    const grant = await this.getGrant(grantId);
    return grant ? { status, grant } : { status: 'unknown' };
  }

  async getGrant(id: string): Promise<Grant | undefined> {
    const h = await this.#redis.hGetAll(`${P}grant:${id}`);
    return h.json ? toGrant(h) : undefined;
  }

  async listGrants(): Promise<Grant[]> {
    const ids = await this.#redis.sMembers(`${P}grants`);
    const grants: Grant[] = [];
    for (const id of ids) {
      const grant = await this.getGrant(id);
      if (grant) grants.push(grant);
      else await this.#redis.sRem(`${P}grants`, id);
    }
    return grants.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async revokeGrant(id: string, reason: string, now: number): Promise<Grant | undefined> {
    await this.#redis.eval(REVOKE, { keys: [`${P}grant:${id}`], arguments: [String(now), reason] });
    return this.getGrant(id);
  }

  async increment(key: string, by: number, ttlMs: number): Promise<number> {
    return Number(await this.#redis.eval(INCREMENT, { keys: [`${P}counter:${key}`], arguments: [String(by), String(ttlMs)] }));
  }

  async admitRequest(client: string, check: LimitCheck): Promise<LimitResult> {
    const { rate, slot } = check;
    const reply = await this.#run(ADMIT, [limitKey(client, 'slots'), limitKey(client, `rate:${rate?.id ?? '-'}`)], [
      slot?.member ?? '', String(slot?.max ?? 0), String(slot?.leaseMs ?? 0),
      rate ? String(rate.intervalMs) : '', rate ? String((rate.burst - 1) * rate.intervalMs) : '',
    ]) as [string, number?];
    if (reply[0] === 'ok') return { admitted: true };
    if (reply[0] === 'concurrency') return { admitted: false, limit: 'concurrency' };
    return { admitted: false, limit: 'rate', retryAfterMs: Number(reply[1]) };
  }

  async holdSlots(client: string, members: string[], leaseMs: number): Promise<void> {
    if (members.length === 0) return;
    await this.#run(HOLD, [limitKey(client, 'slots')], [String(leaseMs), ...members]);
  }

  async releaseSlot(client: string, member: string): Promise<void> {
    await inTime(this.#redis.zRem(limitKey(client, 'slots'), member));
  }

  async ping(): Promise<void> {
    await inTime(this.#redis.ping());
  }

  async close(): Promise<void> {
    await this.#redis.close();
  }

  /** EVALSHA, loading the script on the first NOSCRIPT (a new or restarted Redis); in time. */
  #run(s: { text: string; sha: string }, keys: string[], args: string[]): Promise<unknown> {
    return inTime(this.#redis.evalSha(s.sha, { keys, arguments: args }).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.#redis.eval(s.text, { keys, arguments: args });
    }));
  }
}

function toGrant(h: Record<string, string>): Grant {
  const stored = JSON.parse(h.json!) as Grant;
  return {
    ...stored,
    refreshExpiresAt: Number(h.refreshExpiresAt),
    revokedAt: h.revokedAt !== undefined ? Number(h.revokedAt) : undefined,
    revokedReason: h.revokedReason,
  };
}
