// Whether GitLab answers, for the gsp_gitlab_up metric (never for readiness: a GitLab outage
// must leave every replica answering 502, not empty the Service). Judged from the last
// exchange with GitLab: a forwarded request that got GitLab's response headers says up, one
// that could not reach GitLab says down. Only when there has been no exchange for `staleMs`
// does a scrape send a probe of its own, so that an idle proxy still reports the truth and a
// busy one adds no traffic.
import type { UpstreamErrorKind } from './metrics.ts';

/** Upstream failures that say GitLab itself is unreachable (a reset mid-body does not). */
const UNREACHABLE: ReadonlySet<UpstreamErrorKind> = new Set(['refused', 'dns', 'tls', 'connect-timeout', 'response-timeout']);

export class GitLabHealth {
  #up: boolean | undefined;
  #at = 0;
  readonly #probe: () => Promise<boolean>;
  readonly #staleMs: number;
  readonly #now: () => number;

  constructor(probe: () => Promise<boolean>, opts: { staleMs?: number; now?: () => number } = {}) {
    this.#probe = probe;
    this.#staleMs = opts.staleMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
  }

  /** GitLab's response headers arrived for a forwarded request. */
  answered(): void {
    this.#set(true);
  }

  /** A forwarded request failed; only some kinds of failure mean GitLab is down. */
  failed(kind: UpstreamErrorKind): void {
    if (UNREACHABLE.has(kind)) this.#set(false);
  }

  async up(): Promise<boolean> {
    if (this.#up === undefined || this.#now() - this.#at > this.#staleMs) this.#set(await this.#probe());
    return this.#up!;
  }

  #set(up: boolean): void {
    this.#up = up;
    this.#at = this.#now();
  }
}
