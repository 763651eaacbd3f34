// The proxy's shared state, behind one small interface with two implementations: SQLite in a
// file (src/store/sqlite.ts, the default) and Redis (src/store/redis.ts, when REDIS_URL is
// set, for several replicas). It holds OAuth state (src/oauth/), generic counters with a
// time to live, and the per-client rate and concurrency limits that replicas share
// (src/limits/shared-limits.ts).
//
// Every operation that must not race (consuming a one-time code, rotating a refresh token) is
// atomic in the store itself, so two replicas can never both win.
// Secrets are never stored: codes and refresh tokens are kept as SHA-256 hashes only.

/** The person who approved a grant: their GitLab account. */
export interface Approver {
  username: string;
  id: number;
}

/** A one-time authorization code, as stored (keyed by the code's hash). */
export interface CodeRecord {
  /** The grant the code turns into; known in advance so a replay can revoke it. */
  grantId: string;
  client: string;
  clientId: string;
  redirectUri: string;
  /** Whether the authorization request carried redirect_uri (then the token request must). */
  redirectUriSent: boolean;
  scope: string;
  codeChallenge: string | undefined;
  approver: Approver;
  /** Unix ms. */
  expiresAt: number;
}

export type ConsumeResult =
  | { status: 'ok'; record: CodeRecord }
  /** Seen before: the caller revokes what the first use produced (RFC 6749 4.1.2). */
  | { status: 'replayed'; record: CodeRecord }
  | { status: 'unknown' };

/** An approval: one vendor client acting through the proxy, and its refresh-token family. */
export interface Grant {
  id: string;
  client: string;
  clientId: string;
  scope: string;
  approver: Approver;
  /** Unix ms. */
  createdAt: number;
  /** When the current refresh token expires (Unix ms). */
  refreshExpiresAt: number;
  revokedAt: number | undefined;
  /** Why: "revoked" (RFC 7009 or the CLI), "refresh-reuse", "code-replay". */
  revokedReason: string | undefined;
}

export type RotateResult =
  | { status: 'ok'; grant: Grant }
  /** An old refresh token of this family came back: the grant is now revoked. */
  | { status: 'reused'; grant: Grant }
  | { status: 'revoked'; grant: Grant }
  | { status: 'expired'; grant: Grant }
  | { status: 'unknown' };

export interface Store {
  /** Stores a code (by the SHA-256 of the code) until record.expiresAt. */
  putCode(codeHash: string, record: CodeRecord): Promise<void>;
  /** Marks the code used, atomically: exactly one caller ever gets "ok". */
  consumeCode(codeHash: string, now: number): Promise<ConsumeResult>;

  /** A new grant with its first refresh token (by hash). */
  createGrant(grant: Grant, refreshHash: string): Promise<void>;
  /** Replaces the grant's current refresh token, atomically; an old token of the family
   *  revokes the grant ("reused"). */
  rotateRefresh(grantId: string, presentedHash: string, nextHash: string, nextExpiresAt: number, now: number): Promise<RotateResult>;
  getGrant(id: string): Promise<Grant | undefined>;
  listGrants(): Promise<Grant[]>;
  /** Revokes one grant; returns it (also when it was revoked before), or undefined. */
  revokeGrant(id: string, reason: string, now: number): Promise<Grant | undefined>;

  /** Adds `by` to a counter and returns the new value. A counter that did not exist starts at
   *  0 and lives `ttlMs`; later increments keep that expiry. */
  increment(key: string, by: number, ttlMs: number): Promise<number>;

  /** Admits one request of `client` against its shared limits, atomically: the concurrency
   *  slot first (a refusal there takes no rate token), then the token bucket, then the slot is
   *  taken. Time is the store's own clock (Redis: TIME), never a replica's. */
  admitRequest(client: string, check: LimitCheck): Promise<LimitResult>;
  /** Extends (or puts back) the leases of slots this replica holds for `client`. */
  holdSlots(client: string, members: string[], leaseMs: number): Promise<void>;
  /** Gives a slot back (a member that is not there is no error). */
  releaseSlot(client: string, member: string): Promise<void>;
  /** Resolves when the store answers (the limiter's probe while it counts per replica). */
  ping(): Promise<void>;

  close(): Promise<void>;
}

/** What one request asks of a client's shared limits. */
export interface LimitCheck {
  /** The token bucket, as GCRA: one request every `intervalMs`, at most `burst` at once.
   *  `id` names the settings, so a changed rate_limit or burst starts a full bucket. */
  rate?: { id: string; intervalMs: number; burst: number } | undefined;
  /** One of `max` concurrency slots, for `member`, leased for `leaseMs`: a slot whose holder
   *  stops renewing it (a replica that died) is free again when its lease runs out. */
  slot?: { member: string; max: number; leaseMs: number } | undefined;
}

export type LimitResult =
  | { admitted: true }
  | { admitted: false; limit: 'concurrency' }
  /** `retryAfterMs`: until the bucket holds a request again. */
  | { admitted: false; limit: 'rate'; retryAfterMs: number };

/** Whether a grant still stands. */
export const grantActive = (grant: Grant | undefined, now: number): grant is Grant =>
  grant !== undefined && grant.revokedAt === undefined && grant.refreshExpiresAt > now;
