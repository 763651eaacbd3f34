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
  | { kind: 'pattern'; regex: RegExp; source: string };

export interface RuleConstraints {
  body: ReadonlyMap<string, Constraint>;
  query: ReadonlyMap<string, Constraint>;
  /** Lower-cased: a request carrying any of these keys (body or query) is refused. */
  denyFields: readonly string[];
  /** Narrow this rule to these projects / groups (on top of the client's own lists). */
  projects: readonly ScopePattern[] | undefined;
  groups: readonly ScopePattern[] | undefined;
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
