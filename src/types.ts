// The shapes every step shares: a compiled client and its rules, and the decision made about
// a request. This module imports nothing, so any step may use it without reaching back into
// the policy loader or another step (no import cycles: test/architecture.test.ts).

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
/** A method a rule can name. OPTIONS is answered by the proxy itself. */
export type Method = (typeof METHODS)[number];

// ----------------------------------------------------------------------------- rules

export type Segment =
  | { kind: 'literal'; value: string }
  | { kind: 'param'; name: string }
  | { kind: 'star' }
  | { kind: 'globstar' };

export type Literal = string | number | boolean | null;

export type Constraint =
  | { kind: 'literal'; value: Literal }
  | { kind: 'one-of'; values: readonly Literal[] }
  /** `optional`: a field not sent at all passes (one sent must match). */
  | { kind: 'pattern'; regex: RegExp; source: string; optional?: boolean }
  /** A URL at or below `pin` (src/policy/url-under.ts). */
  | { kind: 'under'; pin: string; optional?: boolean };

export interface RuleConstraints {
  body: ReadonlyMap<string, Constraint>;
  query: ReadonlyMap<string, Constraint>;
  /** Lower-cased: a request carrying any of these keys (body or query) is refused. */
  denyFields: readonly string[];
  /** Narrow this rule to these projects / groups (on top of the client's own lists). */
  projects: readonly ScopePattern[] | undefined;
  groups: readonly ScopePattern[] | undefined;
  /** Quick actions this rule lets a note or description run, lower case; undefined: none. */
  quickActions?: readonly string[] | undefined;
  /** `target:`: fields the object the request acts on must have now, read from GitLab with
   *  the proxy's token before forwarding (src/policy/target.ts). Empty: no such check. */
  target: ReadonlyMap<string, Constraint>;
}

export interface Rule {
  /** The rule as written, e.g. "GET,POST /api/v4/projects/:id/notes". */
  text: string;
  methods: ReadonlySet<Method>;
  segments: Segment[];
  /** Where it was written: "policies/packit.yaml:7". */
  source: string;
  /** Object rules only: query/body constraints, deny_fields and the rule's own
   *  projects/groups (src/policy/constraints.ts). */
  constraints?: RuleConstraints;
}

export interface Match {
  rule: Rule;
  /** Values of the rule's `:name` segments, raw (still percent-encoded). */
  params: Record<string, string>;
}

/** A client's rules, compiled for matching (src/policy/matcher.ts). */
export interface RuleIndex {
  /** The most specific rule allowing `method` on `segments`; undefined: deny. */
  match(method: Method, segments: readonly string[]): Match | undefined;
  /** Every rule allowing it, most specific first. */
  matchAll(method: Method, segments: readonly string[]): Match[];
  /** Every rule whose path matches, whatever its methods. */
  pathMatches(segments: readonly string[]): Rule[];
}

// ----------------------------------------------------------------------------- scope

/** A compiled entry of `projects:` / `groups:`. */
export type ScopePattern =
  | { kind: 'id'; id: number; text: string }
  | {
      kind: 'path';
      /** Lower-cased segments; "*" matches one segment, "**" any number (also none). */
      parts: readonly string[];
      text: string;
    };

export type ScopeKind = 'project' | 'group';

export interface ScopeTarget {
  id: number;
  fullPath: string;
}

/** Looks a project or group up by numeric id or full path: its id and current full path, or
 *  null when it cannot be resolved (src/scope/scope.ts asks GitLab; explain may assume). */
export interface ScopeResolver {
  resolve(kind: ScopeKind, idOrPath: string): Promise<ScopeTarget | null>;
  /** The object at `path` ("/api/v4/projects/5/hooks/7") as GitLab answers a GET now, for a
   *  rule's `target:`; undefined when it cannot be read. */
  current(path: string): Promise<unknown>;
}

/** Shorthands mirroring GitLab token scopes (src/scope/token-scopes.ts). */
export type TokenScope = 'read_api' | 'read_user' | 'read_repository' | 'write_repository';

// ----------------------------------------------------------------------------- graphql

/** A level of allowed field names: `all` allows every field below this point. */
export interface FieldTree {
  all: boolean;
  children: Map<string, FieldTree>;
}

export interface GraphqlPolicy {
  operations: ReadonlySet<'query' | 'mutation'>;
  /** Root levels: query fields, and mutation fields (entries written "mutation.x"). */
  query: FieldTree;
  mutation: FieldTree;
  operationNames: ReadonlySet<string> | undefined;
  introspection: boolean;
  maxDepth: number;
  maxLength: number;
  /** Where the policy came from, for the audit line: "graphql" or "scopes: read_api". */
  source: string;
}

// ----------------------------------------------------------------------------- clients

export interface RateLimitSpec {
  /** As written in the policy, e.g. "600/minute". */
  text: string;
  /** Requests per period, the sustained rate. */
  count: number;
  periodMs: number;
  /** The bucket's size: how many requests may come at once after a quiet spell. */
  burst: number;
}

export interface Located {
  file: string;
  line: number;
  col: number;
}

export interface PolicyTest {
  expect: 'allow' | 'deny';
  method: string;
  target: string;
  where: Located;
}

export interface Client {
  name: string;
  description: string | undefined;
  disabled: boolean;
  revokedJti: ReadonlySet<string>;
  /** Unix seconds; tokens with an earlier iat are refused. */
  tokensIssuedAfter: number | undefined;
  allowTokenSelfRead: boolean;
  /** `admin: true`: rules may grant admin-class routes (src/catalogue/floor.ts). */
  admin: boolean;
  /** The preset's rules (minus `remove:`) first, then the client's own. */
  rules: readonly Rule[];
  matcher: RuleIndex;
  source: string;
  /** `extends:`, e.g. "presets/glean-readonly". */
  preset: string | undefined;
  /** report: what only lacks a rule is forwarded and audited as "would-deny". */
  mode: 'enforce' | 'report';
  /** Run by `check`, not by the server. */
  tests: readonly PolicyTest[];
  /** upstream_token_file / upstream_token_env: this client's own GitLab token, read at load.
   *  A function, so that serializing a client never shows it. */
  upstreamToken?: () => string;
  upstreamTokenFile?: string;
  /** rate_limit (+ burst): a token bucket per client per replica. */
  rateLimit?: RateLimitSpec;
  /** source_ips: where this client's tokens are accepted from (src/auth/source-ips.ts); a node:net BlockList. */
  sourceIps?: { check(address: string, type?: 'ipv4' | 'ipv6'): boolean };
  /** `projects:`: every project a request names must match one; undefined: no project scope. */
  projects: readonly ScopePattern[] | undefined;
  /** `groups:`: every group a request names must match one; undefined: no group scope. */
  groups: readonly ScopePattern[] | undefined;
  /** `scopes:`: shorthands mirroring GitLab token scopes (docs/policy.md). */
  scopes: ReadonlySet<TokenScope>;
  /** `graphql:` (src/graphql/policy.ts); undefined: only read_api's default, if any. */
  graphql?: GraphqlPolicy;
  /** `oauth:`: the OAuth application vendors connect to (src/policy/oauth-registration.ts). */
  oauth?: OAuthRegistration;
}

/** A client's `oauth:` block, compiled (src/policy/oauth-registration.ts). */
export interface OAuthRegistration {
  clientId: string;
  /** SHA-256 of the secret, compared in constant time. */
  secretSha256: Buffer;
  redirectUris: readonly string[];
  accessTokenTtlS: number;
  refreshTokenTtlS: number;
  requirePkce: boolean;
  /** file:line of the block, for problems that involve two clients. */
  source: string;
  /** client_secret_file, watched so that a rotated secret is read again. */
  secretFile?: string;
}

export interface Policy {
  clients: ReadonlyMap<string, Client>;
  /** sha256 over the files' names and contents: what a reload changed. */
  checksum: string;
  files: readonly string[];
  /** Preset files the clients extend. */
  presets: readonly string[];
}

export interface PolicyProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

// ----------------------------------------------------------------------------- decisions

/**
 * Every reason the proxy gives for a refusal or a note, as a closed list. The audit line's
 * `reason` is one of these; what varies (the rule, the project, the field) goes in `detail`.
 * The value says how a refusal is answered when nothing more specific is known.
 */
export const REASONS = {
  // reading the request (400, 405, 413, 415): it cannot be read one way only
  'method': 'method-not-allowed', 'absolute-form': 'malformed', 'path-characters': 'malformed',
  'bad-percent-encoding': 'malformed', 'double-encoding': 'malformed', 'encoded-unreserved': 'malformed',
  'empty-segment': 'malformed', 'invalid-utf8': 'malformed', 'control-character': 'malformed',
  'dot-segment': 'malformed', 'query-characters': 'malformed', 'method-override': 'malformed',
  'credential-parameter': 'malformed', 'format-parameter': 'malformed', 'body-on-safe-method': 'malformed',
  'content-type': 'unsupported-media', 'content-length': 'malformed', 'content-encoding': 'unsupported-media',
  'transfer-encoding': 'malformed', 'te-and-cl': 'malformed', 'duplicate-header': 'malformed',
  'underscore-header': 'malformed', 'hop-by-hop-body-header': 'malformed', 'upgrade': 'malformed',
  'bad-host': 'malformed', 'nul-byte': 'malformed', 'multipart-header': 'malformed',
  'multipart-framing': 'malformed', 'multipart-boundary': 'malformed', 'empty-parameter': 'malformed',
  'duplicate-parameter': 'malformed', 'conflicting-parameter': 'malformed', 'bad-parameter-name': 'malformed',
  'semicolon-separator': 'malformed', 'duplicate-key': 'malformed', 'bad-json': 'malformed', 'json-too-deep': 'malformed',
  'json-not-object': 'malformed', 'forbidden-body-key': 'malformed', 'parameter-in-query-and-body': 'malformed',
  'body-too-large': 'payload-too-large', 'body-aborted': 'malformed', 'unparseable': 'malformed',
  'unreadable-request': 'malformed', 'git-service': 'malformed', 'git-protocol': 'malformed',
  'git-path': 'malformed', 'git-repository-type': 'malformed', 'graphql-malformed': 'malformed',
  // who the client is (401)
  'no-token': 'unauthorized', 'ambiguous-credentials': 'unauthorized', 'bad-basic-auth': 'unauthorized',
  'unsupported-authorization': 'unauthorized', 'not-a-jwt': 'unauthorized', 'token-expired': 'unauthorized',
  'bad-claim': 'unauthorized', 'claim-exp': 'unauthorized', 'claim-aud': 'unauthorized', 'claim-iss': 'unauthorized',
  'claim-nbf': 'unauthorized', 'claim-sub': 'unauthorized', 'claim-iat': 'unauthorized', 'algorithm-not-allowed': 'unauthorized', 'bad-signature': 'unauthorized',
  'unknown-key': 'unauthorized', 'jwks-unavailable': 'unauthorized', 'malformed-token': 'unauthorized',
  'verification-failed': 'unauthorized', 'issued-in-future': 'unauthorized', 'bad-jti': 'unauthorized',
  'unknown-client': 'unauthorized', 'client-disabled': 'unauthorized', 'token-revoked': 'unauthorized',
  'issued-before-cutoff': 'unauthorized', 'source-ip-not-allowed': 'unauthorized',
  // what the policy refuses (403)
  'sudo': 'forbidden', 'not-api': 'forbidden', 'internal-api': 'forbidden', 'token-self': 'forbidden',
  'bad-identifier': 'forbidden', 'no-rule': 'forbidden', 'method-not-allowed': 'forbidden',
  'deny-field': 'forbidden', 'query-constraint': 'forbidden', 'body-constraint': 'forbidden',
  'scope': 'forbidden', 'scope-unresolved': 'forbidden', 'graphql-denied': 'forbidden',
  'git-scope': 'forbidden', 'git-project': 'forbidden', 'report-mode-write': 'forbidden',
  'quick-actions': 'forbidden',
  'credential-route': 'forbidden', 'admin-route': 'forbidden', 'target-unresolved': 'forbidden',
  'target-constraint': 'forbidden',
  // limits and the proxy's own state (429, 503, 500)
  'rate-limited': 'too-many-requests', 'too-many-concurrent': 'too-many-requests',
  'audit-unavailable': 'unavailable', 'body-budget': 'unavailable', 'internal-error': 'internal',
  // GitLab's side (502, 504), and what happened to an allowed request
  'upstream-unreachable': 'bad-gateway', 'upstream-timeout': 'gateway-timeout',
  'upstream-stalled': 'gateway-timeout', 'upstream-aborted': 'bad-gateway',
  'upstream-response-unreadable': 'bad-gateway', 'upstream-list-unfilterable': 'bad-gateway',
  'redirect-outside-allowlist': 'forbidden', 'connection-closed': 'malformed',
  'client-aborted': 'malformed', 'client-timeout': 'request-timeout', 'shutdown': 'unavailable', 'unprocessed': 'internal',
  // notes on what was allowed or answered locally
  // (the code of a note is never used to answer)
  'options': 'not-found', 'scope-checked': 'forbidden',
  // the OAuth provider (src/oauth/, docs/oauth.md): its events, then its refusals (`detail`:
  // the RFC 6749 error code, or why a request page was shown)
  'oauth-metadata': 'not-found', 'oauth-authorize': 'forbidden', 'oauth-signed-in': 'forbidden',
  'oauth-consent-shown': 'forbidden', 'oauth-approved': 'forbidden', 'oauth-token-issued': 'forbidden',
  'oauth-refreshed': 'forbidden', 'oauth-revoked': 'forbidden', 'oauth-revoke-unknown-token': 'forbidden',
  'oauth-token-info': 'forbidden',
  'oauth-request-refused': 'malformed', 'oauth-error': 'malformed', 'oauth-flow-expired': 'malformed',
  'oauth-signin-failed': 'bad-gateway', 'oauth-denied': 'forbidden', 'oauth-approver-refused': 'forbidden',
  'oauth-csrf': 'forbidden', 'oauth-code-replay': 'malformed', 'oauth-refresh-reuse': 'malformed',
  'oauth-grant-revoked': 'unauthorized',
} as const satisfies Record<string, ErrorCode>;

export type Reason = keyof typeof REASONS;

export type ErrorCode =
  | 'malformed'            // 400: the request cannot be read one way only
  | 'unauthorized'         // 401: no valid client token
  | 'forbidden'            // 403: the policy does not allow it
  | 'not-found'            // 404
  | 'method-not-allowed'   // 405
  | 'request-timeout'      // 408: the client did not send its request in time
  | 'payload-too-large'    // 413
  | 'headers-too-large'    // 431
  | 'unsupported-media'    // 415
  | 'too-many-requests'    // 429
  | 'bad-gateway'          // 502: GitLab unreachable
  | 'gateway-timeout'      // 504: GitLab too slow
  | 'unavailable'          // 503: shutting down or audit log unwritable
  | 'internal';            // 500

/** How a refusal is answered; the one writer is src/answer.ts. */
export interface Refusal {
  code: ErrorCode;
  reason: Reason;
  /** Shown to the client after the status text; never a secret or a token. */
  message: string | undefined;
  /** For the audit line only (the rule, the project, the field). */
  detail: string | undefined;
  /** GitLab's REST error body, or GraphQL's {"errors": [...]}. */
  format: 'rest' | 'graphql';
  /** The request's framing or body cannot be trusted: the connection is not reused. */
  closeConnection: boolean;
  retryAfterSeconds: number | undefined;
}

/** allow: forwarded by a rule; would-deny: forwarded in report mode although enforce mode
 *  would refuse it; deny: refused; local: answered by the proxy itself (OPTIONS). */
export type Verdict = 'allow' | 'deny' | 'would-deny' | 'local';

/** Exactly what is sent to GitLab for a forwarded request: only what was checked. */
export interface ForwardPlan {
  /** Raw path relative to GitLab's root plus the canonical query. */
  target: string;
  headers: Readonly<Record<string, string>>;
  /** The body bytes that were checked (or the proxy's canonical re-serialization of them). */
  body: Buffer;
  /** A scoped client's list answer: keeps an item of the JSON array. */
  listFilter: ((item: unknown) => boolean) | undefined;
  /** Git routes: the token goes as a Basic-auth password. */
  basicAuth: boolean;
}

/** The GitLab route a request reaches (src/catalogue/), for the audit line and `explain`. */
export interface RouteRef {
  /** "GET /api/v4/projects/:id (Projects)" */
  name: string;
  /** Its risk class (credential, admin, membership, destructive, exfiltration, write, read). */
  class: string;
  /** Why that class. */
  why: string;
}

export interface Decision {
  verdict: Verdict;
  /** The GitLab route reached; null outside /api/v4 or when GitLab has no such route. */
  route: RouteRef | null;
  /** Why it was refused, or would be (report mode), or a note on an allow; null: a rule allowed it. */
  reason: Reason | null;
  detail: string | undefined;
  /** The rule that allowed it, or whose constraints refused it. */
  rule: Rule | undefined;
  /** "GET /api/v4/x (policies/a.yaml:3)", "scopes: read_repository", ... for the audit line. */
  ruleLabel: string | null;
  /** How to answer a refusal (verdict deny). */
  refusal: Refusal | undefined;
  /** What to send GitLab (verdict allow or would-deny). */
  forward: ForwardPlan | undefined;
  /** How many request body bytes were read. */
  bytesIn: number;
}
