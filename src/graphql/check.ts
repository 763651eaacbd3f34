// GraphQL on /api/graphql (reference item 13): which clients may use it at all, the request
// line and body rules, and the project/group scope of `project(fullPath:)` / `group(fullPath:)`.
// The decision (src/decision/decide.ts) calls authorizeGraphql through decidePath,
// checkGraphqlRequestLine before reading the body and checkGraphqlBody after.
import type { Client, Reason } from '../types.ts';
import { parseJsonStrict } from '../request/json.ts';
import { ProxyError } from '../errors.ts';
import { inScope, type ScopeResolver } from '../scope/scope.ts';
import { analyzeEntry, type EntryAnalysis, type GraphqlEntry } from './document.ts';
import { graphqlDenied, graphqlMalformed, graphqlUnsupportedMedia } from './errors.ts';
import { canonicalText } from './gitlab-text.ts';
import { scopeReferences } from './scope-walk.ts';
import { READ_API_GRAPHQL, type GraphqlPolicy } from '../policy/graphql-policy.ts';

/** The client's GraphQL policy: its `graphql:` section, else the read_api default, else none. */
export function graphqlPolicyOf(client: Pick<Client, 'graphql' | 'scopes'>): GraphqlPolicy | undefined {
  return client.graphql ?? (client.scopes?.has('read_api') ? READ_API_GRAPHQL : undefined);
}

/** The decision on the GraphQL surface before any body is read (src/decision/path.ts). */
export function authorizeGraphql(client: Pick<Client, 'graphql' | 'scopes'>, method: string):
  { allow: true; label: string } | { allow: false; reason: Reason; detail: string } {
  const policy = graphqlPolicyOf(client);
  // Kept under "not-api" so a client without GraphQL is refused exactly as before GraphQL existed.
  if (!policy) return { allow: false, reason: 'not-api', detail: '/api/graphql needs a graphql: policy or scopes: [read_api]' };
  // GitLab runs queries on GET and HEAD too, with the query in the query string
  // (graphql_controller.rb disallow_mutations_for_get); only POST with a JSON body is read here.
  if (method !== 'POST') return { allow: false, reason: 'graphql-denied', detail: `${method} not allowed (POST with a JSON body only)` };
  return { allow: true, label: policy.source === 'graphql' ? 'graphql-policy' : 'graphql-read-api' };
}

/** Checks that need no body: no query string, a JSON body. */
export function checkGraphqlRequestLine(hasQuery: boolean, body: { mediaType: string | undefined } | undefined): void {
  // Rails merges the query string into params and lets it win over the body
  // (actionpack http/parameters.rb), so "?query=mutation{...}" would run instead of the body.
  if (hasQuery) throw graphqlMalformed('query string not allowed');
  if (!body) throw graphqlMalformed('a JSON body is required');
  // Multipart (apollo_upload_server "operations") and form bodies are other readings of params.
  if (body.mediaType !== 'application/json') throw graphqlUnsupportedMedia('content-type must be application/json');
}

const SINGLE_KEYS = new Set(['query', 'operationName', 'variables', 'remove_deprecated']);
const BATCH_KEYS = new Set(['query', 'operationName', 'variables']);
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** What checkGraphqlBody found: the audit summary and the body to forward in place of the client's. */
export interface GraphqlCheck {
  /** For the audit line: "query project,currentUser". */
  summary: string;
  /** The checked request re-serialized: each query printed from its checked document, variables
   *  and operationName as checked (see gitlab-text.ts canonicalText). */
  forwardBody: Buffer;
}

/** One entry as read from the body, with what is forwarded besides the query text. */
interface ReadEntry extends GraphqlEntry {
  removeDeprecated: boolean | undefined;
}

/**
 * Reads the body as GitLab's GraphqlController would and checks every operation in it
 * against the client's policy and scope. Resolves with the audit summary and the bytes to
 * forward; throws a GraphQL refusal (src/graphql/errors.ts) otherwise.
 */
export async function checkGraphqlBody(client: Client, body: Buffer, resolver: ScopeResolver | undefined): Promise<GraphqlCheck> {
  const policy = graphqlPolicyOf(client);
  if (!policy) throw graphqlDenied('not enabled for this client');
  const value = readJson(body);
  let entries: ReadEntry[];
  const batch = Array.isArray(value);
  if (Array.isArray(value)) {
    // Apollo batching: Rails puts a JSON array into params[:_json] and GitLab runs every entry
    // (graphql_controller.rb multiplex?); each entry must pass.
    if (value.length === 0) throw graphqlMalformed('empty batch');
    entries = value.map((e, i) => readEntry(e, BATCH_KEYS, `batch entry ${i}: `));
  } else {
    entries = [readEntry(value, SINGLE_KEYS, '')];
  }
  // GitLab sums the query sizes of a batch (graphql_controller.rb limit_query_size). JS string
  // length counts UTF-16 units, never fewer than Ruby's characters.
  const total = entries.reduce((n, e) => n + e.query.length, 0);
  if (total > policy.maxLength) throw graphqlDenied(`query longer than max_length ${policy.maxLength} (${total} characters)`);

  const analyses: EntryAnalysis[] = entries.map((e) => analyzeEntry(e, policy));
  const roots = analyses.flatMap((a) => a.roots);
  await checkScope(client, entries, analyses, resolver);
  const forwarded = entries.map((e, i) => forwardEntry(e, analyses[i]!));
  const ops = [...new Set(roots.map((r) => r.operation))].join(',');
  return {
    summary: `${ops} ${[...new Set(roots.map((r) => (r.operation === 'mutation' ? `mutation.${r.field}` : r.field)))].join(',')}`,
    forwardBody: Buffer.from(JSON.stringify(batch ? forwarded : forwarded[0]), 'utf8'),
  };
}

/** The entry GitLab receives: the checked document printed, and the values that were checked. */
function forwardEntry(e: ReadEntry, analysis: EntryAnalysis): Record<string, unknown> {
  const out: Record<string, unknown> = { query: canonicalText(analysis.document) };
  if (e.operationName !== null) out.operationName = e.operationName;
  if (Object.keys(e.variables).length > 0) out.variables = e.variables;
  if (e.removeDeprecated !== undefined) out.remove_deprecated = e.removeDeprecated;
  return out;
}

function readJson(body: Buffer): unknown {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw graphqlMalformed('invalid-utf8');
  }
  try {
    return parseJsonStrict(text);
  } catch (err) {
    if (err instanceof ProxyError) throw graphqlMalformed(err.reason);
    throw err;
  }
}

function readEntry(value: unknown, keys: ReadonlySet<string>, where: string): ReadEntry {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw graphqlMalformed(`${where}body must be a JSON object or an array of them`);
  const o = value as Record<string, unknown>;
  // Only the keys GitLab reads (graphql_controller.rb permitted_*_params). Any other key could
  // be read by something else: "_json" in an object body turns it into a batch (multiplex?
  // is params[:_json].is_a?(Array)), "private_token" is a credential (auth_finders.rb).
  for (const key of Object.keys(o)) if (!keys.has(key)) throw graphqlMalformed(`${where}key "${key}" not allowed`);
  if (typeof o.query !== 'string') throw graphqlMalformed(`${where}query must be a string`);
  if (o.operationName !== undefined && o.operationName !== null && typeof o.operationName !== 'string') throw graphqlMalformed(`${where}operationName must be a string`);
  if (o.remove_deprecated !== undefined && typeof o.remove_deprecated !== 'boolean') throw graphqlMalformed('remove_deprecated must be true or false');
  const inBatch = keys === BATCH_KEYS;
  const variables = readVariables(o.variables, where, inBatch);
  checkNumbers(variables, `${where}variables`);
  return {
    query: o.query,
    operationName: (o.operationName as string | null | undefined) ?? null,
    variables,
    preprocessed: !inBatch,
    removeDeprecated: o.remove_deprecated as boolean | undefined,
  };
}

/** `variables` as lib/gitlab/graphql/variables.rb reads them: an object, or JSON text of one
 *  (blank and "null" are no variables), parsed strictly here (duplicate keys refused). */
function readVariables(v: unknown, where: string, inBatch: boolean): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  // In a batch, GitLab permits only a hash (permitted_multiplex_params `variables: {}`) and
  // drops a string: the query would run with its defaults instead of the values checked.
  if (typeof v !== 'string' || inBatch) throw graphqlMalformed(`${where}variables must be an object${inBatch ? '' : ' or a JSON string'}`);
  if (v.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = parseJsonStrict(v);
  } catch (err) {
    if (err instanceof ProxyError) throw graphqlMalformed(`${where}variables: ${err.reason}`);
    throw err;
  }
  if (parsed === null) return {};
  // variables.rb would parse a JSON string inside the string again: refused.
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw graphqlMalformed(`${where}variables must be a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Variables are forwarded re-serialized: an integer beyond 2^53 would reach GitLab as another
 *  number than the client sent, so it is refused rather than changed. */
function checkNumbers(value: unknown, where: string): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) throw graphqlMalformed(`${where}: number ${value} cannot be forwarded exactly`);
  } else if (Array.isArray(value)) {
    for (const v of value) checkNumbers(v, where);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) checkNumbers(v, where);
  }
}

/**
 * A client with `projects:` or `groups:` may reach projects and groups only by naming them:
 * every field of every entry is typed with GitLab's reference (scope-walk.ts), and the paths
 * named through project(fullPath:), group(fullPath:) and namespace(fullPath:) are checked like
 * a REST request's.
 */
async function checkScope(client: Client, entries: readonly GraphqlEntry[], analyses: readonly EntryAnalysis[], resolver: ScopeResolver | undefined): Promise<void> {
  if (client.projects === undefined && client.groups === undefined) return;
  const refs = analyses.flatMap((a, i) => scopeReferences(a.document, entries[i]!.variables));
  for (const ref of refs) {
    if (!resolver) throw graphqlDenied(`${ref.field} ${ref.fullPath}: scope cannot be resolved`);
    if (!(await graphqlInScope(client, ref.kind, ref.fullPath, resolver))) throw graphqlDenied(`${ref.field} ${ref.fullPath} out of scope`);
  }
}

async function graphqlInScope(client: Client, kind: 'project' | 'group', path: string, resolver: ScopeResolver): Promise<boolean> {
  if (kind === 'project') {
    if (client.projects !== undefined) return inScope(client, 'project', path, resolver);
    // Only groups: listed: the project's current namespace must be in scope.
    const target = await resolver.resolve('project', path);
    if (!target) return false;
    const cut = target.fullPath.lastIndexOf('/');
    return cut > 0 && inScope(client, 'group', target.fullPath.slice(0, cut), resolver);
  }
  // Only projects: listed: a group's subtree lists projects that are not named, so no group passes.
  if (client.groups === undefined) return false;
  return inScope(client, 'group', path, resolver);
}
