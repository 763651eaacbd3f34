// Prometheus metrics, served on the admin listener only (src/ops/admin.ts). Every label value
// comes from a bounded set: client names from the policy ("(none)" before authentication),
// decisions, HTTP statuses, and fixed reason codes; a label never carries request data.
// The hot path (one call per request, when it ends) counts in plain numbers (tally.ts), handed
// to prom-client when /metrics is scraped; it costs a few Map lookups and increments.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { HistogramTally, RequestTally } from './tally.ts';

/** Client label for requests that never authenticated; not a valid client name. */
export const NO_CLIENT = '(none)';
/** Distinct values a reason label may take before further ones are counted as "other". */
const MAX_REASONS = 64;

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export type UpstreamErrorKind =
  | 'refused' | 'reset' | 'dns' | 'tls' | 'connect-timeout' | 'response-timeout' | 'stall-timeout' | 'other';

export interface RequestObservation {
  client: string | null;
  decision: string;
  reason: string | null;
  status: number;
  durationMs: number;
  upstreamMs: number | null;
}

export interface MetricsSources {
  /** Requests in flight per client. */
  inFlight?: () => ReadonlyMap<string, number>;
  /** Sockets to GitLab, in use and idle in the pool. */
  upstreamSockets?: () => { active: number; free: number };
  /** Whether GitLab answers (a cached probe); reported as gsp_gitlab_up, never part of readiness. */
  gitlabUp?: () => Promise<boolean>;
  /** Request body bytes held by requests (MAX_BUFFERED_BODY_BYTES). */
  bodyBytesHeld?: () => number;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly #requests = new RequestTally();
  readonly #duration: HistogramTally;
  readonly #upstreamDuration: HistogramTally;
  readonly #upstreamErrors: Counter<'kind'>;
  readonly #reloads: Counter<'result'>;
  readonly #lastReload: Gauge;
  readonly #policyInfo: Gauge<'checksum'>;
  readonly #policyClients: Gauge;
  readonly #jwtFailures: Counter<'reason'>;
  readonly #limitRefusals: Counter<'client' | 'reason'>;
  readonly #denials: Counter<'client' | 'decision' | 'reason'>;
  readonly #denialReasons = new Set<string>();
  readonly #auditFailures: Counter;
  readonly #auditLost: Counter;
  readonly #auditWritable: Gauge;
  readonly #connectionsDropped: Counter;
  /** Only with REDIS_URL: without it there is nothing to share, and no series to alert on. */
  #limitsShared: Gauge | undefined;
  readonly #jwtReasons = new Set<string>();

  constructor(sources: MetricsSources = {}, opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const requests = this.#requests;
    new Counter({
      name: 'gsp_requests_total', help: 'Requests to the vendor-facing listener, by client, decision and HTTP status.',
      labelNames: ['client', 'decision', 'status'], registers,
      collect() {
        requests.publish(this);
      },
    });
    this.#duration = new HistogramTally('gsp_request_duration_seconds', 'Whole request, from arrival to the last byte of the response.', 'client', DURATION_BUCKETS);
    this.#upstreamDuration = new HistogramTally('gsp_upstream_duration_seconds', "GitLab's part: from sending the request to GitLab's response headers.", 'client', DURATION_BUCKETS);
    this.registry.registerMetric(this.#duration.asMetric());
    this.registry.registerMetric(this.#upstreamDuration.asMetric());
    this.#upstreamErrors = new Counter({
      name: 'gsp_upstream_errors_total', help: 'Requests to GitLab that failed, by kind (refused, reset, dns, tls, connect-timeout, response-timeout, stall-timeout, other).',
      labelNames: ['kind'], registers,
    });
    this.#reloads = new Counter({
      name: 'gsp_policy_reloads_total', help: 'Policy and secret reloads, by result (success, failure). A failure keeps the previous policy in force.',
      labelNames: ['result'], registers,
    });
    this.#lastReload = new Gauge({
      name: 'gsp_policy_last_reload_success_timestamp_seconds', help: 'Unix time of the last successful load (start or reload).', registers,
    });
    this.#policyInfo = new Gauge({
      name: 'gsp_policy_info', help: 'Always 1; the checksum label is the sha256 of the policy in force.',
      labelNames: ['checksum'], registers,
    });
    this.#policyClients = new Gauge({ name: 'gsp_policy_clients', help: 'Clients defined by the policy in force.', registers });
    this.#jwtFailures = new Counter({
      name: 'gsp_jwt_failures_total', help: 'Requests refused with 401, by reason (no-token, token-expired, bad-signature, ...).',
      labelNames: ['reason'], registers,
    });
    this.#limitRefusals = new Counter({
      name: 'gsp_limit_refusals_total', help: 'Requests refused with 429 by a per-client limit, by client and reason (rate-limited, too-many-concurrent).',
      labelNames: ['client', 'reason'], registers,
    });
    this.#denials = new Counter({
      name: 'gsp_denials_total', help: 'Requests denied (deny) or that report mode would deny (would-deny), by client, decision and reason code.',
      labelNames: ['client', 'decision', 'reason'], registers,
    });
    this.#auditFailures = new Counter({ name: 'gsp_audit_write_failures_total', help: 'Failed writes to the audit log.', registers });
    this.#auditLost = new Counter({ name: 'gsp_audit_lines_lost_total', help: 'Audit lines that never reached the audit log.', registers });
    this.#auditWritable = new Gauge({ name: 'gsp_audit_writable', help: '1 while the audit log accepts lines, 0 while it cannot be written.', registers });
    this.#auditWritable.set(1);
    this.#connectionsDropped = new Counter({
      name: 'gsp_connections_dropped_total', help: 'Vendor connections closed as they arrived because MAX_CONNECTIONS were open.', registers,
    });
    const { inFlight, upstreamSockets, gitlabUp, bodyBytesHeld } = sources;
    new Gauge({
      name: 'gsp_request_body_bytes_held', help: 'Request body bytes held by requests being read or forwarded (at most MAX_BUFFERED_BODY_BYTES).', registers,
      collect() {
        this.set(bodyBytesHeld?.() ?? 0);
      },
    });
    new Gauge({
      name: 'gsp_gitlab_up', help: '1 while GitLab answers GET /api/v4/version (below 500, probed at most every 5 s), 0 while it does not.', registers,
      async collect() {
        if (gitlabUp) this.set((await gitlabUp()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'gsp_requests_in_flight', help: 'Requests being served, by client.', labelNames: ['client'], registers,
      collect() {
        this.reset();
        for (const [client, n] of inFlight?.() ?? []) this.labels(client).set(n);
      },
    });
    new Gauge({
      name: 'gsp_upstream_sockets', help: 'Connections to GitLab, in use (active) and idle in the keep-alive pool (free).',
      labelNames: ['state'], registers,
      collect() {
        const s = upstreamSockets?.() ?? { active: 0, free: 0 };
        this.labels('active').set(s.active);
        this.labels('free').set(s.free);
      },
    });
    this.#reloads.labels('success').inc(0);
    this.#reloads.labels('failure').inc(0);
    this.#upstreamErrors.labels('other').inc(0);
  }

  /** One finished request (called once, when its response is over). */
  request(o: RequestObservation): void {
    const client = o.client ?? NO_CLIENT;
    this.#requests.count(client, o.decision, o.status);
    this.#duration.observe(client, o.durationMs / 1000);
    if (o.upstreamMs !== null) this.#upstreamDuration.observe(client, o.upstreamMs / 1000);
    if (o.decision === 'deny' || o.decision === 'would-deny') this.#denials.labels(client, o.decision, this.#capped(this.#denialReasons, o.reason)).inc();
    if (o.status === 401) this.#jwtFailures.labels(this.#reason(o.reason)).inc();
    else if (o.status === 429 && (o.reason === 'rate-limited' || o.reason === 'too-many-concurrent')) this.#limitRefusals.labels(client, o.reason).inc();
  }

  upstreamError(kind: UpstreamErrorKind): void {
    this.#upstreamErrors.labels(kind).inc();
  }

  /** The policy in force changed (start or successful reload). */
  policyLoaded(checksum: string, clientCount: number): void {
    this.#policyInfo.reset();
    this.#policyInfo.labels(checksum).set(1);
    this.#lastReload.set(Date.now() / 1000);
    this.#policyClients.set(clientCount);
  }

  reload(ok: boolean): void {
    this.#reloads.labels(ok ? 'success' : 'failure').inc();
  }

  auditWriteFailed(): void {
    this.#auditFailures.inc();
  }

  /** A vendor connection closed on arrival: MAX_CONNECTIONS were open. */
  connectionDropped(): void {
    this.#connectionsDropped.inc();
  }

  auditLinesLost(n: number): void {
    this.#auditLost.inc(n);
  }

  auditWritable(writable: boolean): void {
    this.#auditWritable.set(writable ? 1 : 0);
  }

  /** Shared limits (REDIS_URL): counted in Redis (true) or, Redis being out of reach, per replica. */
  limitsShared(shared: boolean): void {
    this.#limitsShared ??= new Gauge({
      name: 'gsp_limits_shared',
      help: 'With REDIS_URL: 1 while rate and concurrency limits are counted in Redis for all replicas, 0 while Redis is out of reach and each replica counts alone.',
      registers: [this.registry],
    });
    this.#limitsShared.set(shared ? 1 : 0);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Reasons are fixed codes; the cap is a second line against an unbounded label. */
  #reason(reason: string | null): string {
    return this.#capped(this.#jwtReasons, reason);
  }

  /** The reason's code only: a detail after ":" (e.g. "not-api: only /api/v4 is served") is dropped. */
  #capped(seen: Set<string>, reason: string | null): string {
    const r = reason === null ? 'unknown' : reason.split(':', 1)[0]!;
    if (seen.has(r)) return r;
    if (seen.size >= MAX_REASONS) return 'other';
    seen.add(r);
    return r;
  }
}
