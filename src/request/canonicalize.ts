// Canonicalization: the first step of every request. From the raw request target and raw
// headers it produces the one reading GitLab would make, or refuses the request. The policy
// is evaluated on this reading and the proxy forwards exactly these bytes.
// The rules and the GitLab behaviour behind each are listed in docs/security.md.
import { malformed, ProxyError } from '../errors.ts';
import { gitHeaderRules, gitRoute, type GitRoute } from './git-route.ts';
import { readHeaders, type ClientCredential } from './headers.ts';
import { parseParams, type Param } from './query.ts';
import { routeReadings } from './route.ts';

export type RequestMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';
const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Where under the proxy's root a path points. `api` is /api/v4/..., `graphql` exactly
 *  /api/graphql (src/graphql/; /api/glql and /api/graphql.json stay `outside`). */
export type Surface = 'api' | 'graphql' | 'outside';

export interface CanonicalRequest {
  method: RequestMethod;
  /** Raw path relative to the proxy's root: "/api/v4/projects/acme%2Fapp". */
  path: string;
  /** `path` split on "/", raw, without the leading empty string. */
  segments: readonly string[];
  /** GitLab's Grape drops a trailing ".json" format suffix (grape lib/grape/path.rb): the
   *  segments as GitLab may also read them, when the last segment has one (the route
   *  catalogue decides which reading a route takes: src/catalogue/format.ts). */
  formatAlias: readonly string[] | undefined;
  /** Every way GitLab may route the path (src/request/route.ts): `segments` first, then each
   *  cut of the last segment at a "." or "%2E" (Grape's "(.:format)" takes any extension:
   *  "projects.json", "projects.xml" are "projects"). The floor, project/group scope,
   *  reference parameters, quick actions and list filtering read all of these. */
  readings: readonly (readonly string[])[];
  surface: Surface;
  query: readonly Param[];
  /** Whether the target had a "?" at all (an empty query is a query to GraphQL's reading). */
  hasQuery: boolean;
  /** The query to forward, raw, with the client's own credential removed ('' for none). */
  forwardQuery: string;
  credential: ClientCredential | undefined;
  /** Headers from the allowlist, as sent. The forwarder adds the real credential. */
  forwardHeaders: Readonly<Record<string, string>>;
  host: string | undefined;
  body: { length: number | undefined; mediaType: string | undefined } | undefined;
  /** The Content-Type as sent (a multipart body's boundary is read from it). */
  contentType: string | undefined;
  /** A git smart-HTTP route (src/git/route.ts); undefined for every other path. */
  git?: GitRoute | undefined;
}

/** Query keys that carry a credential GitLab would honour (lib/gitlab/auth/auth_finders.rb,
 *  config/initializers/doorkeeper.rb). The client's own JWT may arrive in the first two. */
const CLIENT_TOKEN_PARAMS = new Set(['private_token', 'access_token']);
const CREDENTIAL_PARAMS = new Set(['private_token', 'access_token', 'bearer_token', 'job_token', 'token', 'feed_token', 'rss_token']);

/** Characters allowed raw in a path: RFC 3986 pchar minus ":" ";" "*", which GitLab never needs. */
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()+,=@%/]*$/;
const QUERY_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/?[\]]*$/;
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;
const CONTROL = /[\x00-\x1f\x7f\\]/;
const ENCODED_UNRESERVED = /%(?:2[Dd]|3[0-9]|4[1-9A-Fa-f]|5[0-9AaFf]|6[1-9A-Fa-f]|7[0-9AaEe])/;

export function canonicalize(method: string, rawTarget: string, rawHeaders: readonly string[], root: string): CanonicalRequest {
  // Workhorse accepts only the exact upper-case method names (rejectmethods/middleware.go).
  if (!METHODS.has(method)) throw new ProxyError('method-not-allowed', 'method', { message: 'method not allowed', closeConnection: true });
  const q = rawTarget.indexOf('?');
  const rawPath = q === -1 ? rawTarget : rawTarget.slice(0, q);
  const rawQuery = q === -1 ? '' : rawTarget.slice(q + 1);
  const gitRules = gitHeaderRules(method, rawPath, root);
  const headers = readHeaders(rawHeaders, gitRules);

  // Origin-form only: Node keeps absolute-form targets in req.url (smuggling vector).
  if (!rawTarget.startsWith('/')) throw malformed('absolute-form', 'request target must be a path');

  const { path, segments, surface } = readPath(rawPath, root);
  const query = readQuery(rawQuery);

  let credential = headers.credential;
  let forwardQuery = '';
  for (const p of query) {
    if (!CLIENT_TOKEN_PARAMS.has(p.base)) {
      forwardQuery = forwardQuery === '' ? p.raw : `${forwardQuery}&${p.raw}`;
      continue;
    }
    if (p.key !== p.base || credential) {
      throw new ProxyError('unauthorized', 'ambiguous-credentials', { message: 'send one credential only' });
    }
    credential = { source: p.base === 'private_token' ? 'query:private_token' : 'query:access_token', token: p.value };
  }

  const hasBody = (headers.contentLength ?? 0) > 0 || headers.chunked;
  // Grape reads no JSON body on GET, but Rack and Rails read form and JSON bodies on any
  // method, so a body on these methods could carry parameters the policy never saw.
  if (hasBody && (method === 'GET' || method === 'HEAD' || method === 'OPTIONS')) {
    throw malformed('body-on-safe-method', `a ${method} request may not have a body`);
  }

  const last = segments[segments.length - 1];
  const formatAlias = last !== undefined && JSON_SUFFIX.test(last)
    ? [...segments.slice(0, -1), last.replace(JSON_SUFFIX, '')]
    : undefined;
  const git = gitRules && surface === 'outside'
    ? gitRoute(method, segments, query, method === 'POST' ? mediaType(headers.contentType) : undefined, headers.forward['git-protocol'])
    : undefined;

  return {
    method: method as RequestMethod,
    path,
    segments,
    formatAlias,
    readings: routeReadings(segments),
    surface,
    query,
    hasQuery: q !== -1,
    forwardQuery,
    credential,
    forwardHeaders: headers.forward,
    host: headers.host,
    body: hasBody ? { length: headers.contentLength, mediaType: mediaType(headers.contentType) } : undefined,
    contentType: headers.contentType,
    git,
  };
}

/** A ".json" format suffix, raw or with the dot encoded (see formatAlias). */
const JSON_SUFFIX = /(?:\.|%2e)json$/i;
const ENCODED_PERCENT = /%25/i;
const ENCODED_SLASH = /%2[Ff]/;

/** `path`: the raw path relative to the root ("/" for the root itself), as forwarded. */
function readPath(rawPath: string, root: string): { path: string; segments: string[]; surface: Surface } {
  // Most paths hold only plain segments: nothing encoded, none empty, no dot segment. One
  // test then stands for every check below (each segment also passes checkSegment).
  const plain = PLAIN_PATH.test(rawPath);
  if (!plain) checkRawPath(rawPath);
  let rel = rawPath;
  let surface: Surface = 'api';
  if (root !== '') {
    if (rawPath === root || rawPath.startsWith(root + '/')) rel = rawPath.slice(root.length) || '/';
    else surface = 'outside';
  }
  const segments = rel === '/' ? [] : rel.slice(1).split('/');
  if (!plain) for (const seg of segments) checkSegment(seg);
  if (surface === 'api' && (segments[0] !== 'api' || segments[1] !== 'v4')) {
    surface = segments.length === 2 && segments[0] === 'api' && segments[1] === 'graphql' ? 'graphql' : 'outside';
  }
  return { path: rel, segments, surface };
}

/** "/" followed by plain segments (PLAIN_SEGMENT's characters, not "." or ".."), one or more. */
const PLAIN_PATH = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9_.~-]+)+$/;

function checkRawPath(rawPath: string): void {
  if (!PATH_CHARS.test(rawPath)) throw malformed('path-characters', 'path contains characters that must be percent-encoded');
  if (BAD_PERCENT.test(rawPath)) throw malformed('bad-percent-encoding', 'malformed percent-encoding in path');
  // A %25 decodes to "%", so a second decoding anywhere downstream reads another character.
  if (ENCODED_PERCENT.test(rawPath)) throw malformed('double-encoding', 'percent-encoded "%" in path');
  // Grape's router (Mustermann) matches a literal character also in its percent-encoded
  // form, so "/api/v4/%69nternal" is routed as "/api/v4/internal". Clients encode none of
  // the unreserved characters but "." (python-gitlab writes README%2Emd); refusing the
  // others keeps every literal in the path readable as written.
  // One exception: a segment holding an encoded "/" is always a parameter value (no route
  // literal contains "/"), which Mustermann unescapes whole: "acme%2Fmy%2Dapp" is "acme/my-app".
  if (rawPath.includes('%')) {
    for (const seg of rawPath.split('/')) {
      if (ENCODED_UNRESERVED.test(seg) && !ENCODED_SLASH.test(seg)) {
        throw malformed('encoded-unreserved', 'percent-encoded letter, digit, "-", "_" or "~" in path');
      }
    }
  }
}

/** A segment with nothing to decode and no dot segment: the common case, checked at once. */
const PLAIN_SEGMENT = /^(?!\.\.?$)[A-Za-z0-9_.~-]+$/;

function checkSegment(seg: string): void {
  if (PLAIN_SEGMENT.test(seg)) return;
  // Grape collapses "//" and drops a trailing "/" (grape router.rb normalize_path).
  if (seg === '') throw malformed('empty-segment', 'empty path segment ("//" or a trailing "/")');
  let decoded: string;
  try {
    decoded = decodeURIComponent(seg);
  } catch {
    throw malformed('invalid-utf8', 'invalid UTF-8 in path');
  }
  // NUL, CR/LF and other controls: Ruby's ^ and $ are line anchors, so "5%0Ax" matches
  // GitLab's numeric-id pattern /^-?\d+$/ (lib/api/helpers.rb find_project).
  if (CONTROL.test(decoded)) throw malformed('control-character', 'control character or backslash in path');
  // Dot segments, raw or encoded, are resolved by some readers (Node's URL, Workhorse's
  // path.Clean) and not by others (Grape): refuse them, and empty parts of encoded paths.
  for (const part of decoded.split('/')) {
    if (part === '.' || part === '..') throw malformed('dot-segment', '"." or ".." in path');
    if (part === '') throw malformed('empty-segment', 'empty part in an encoded path');
  }
}

function readQuery(rawQuery: string): Param[] {
  if (!QUERY_CHARS.test(rawQuery)) throw malformed('query-characters', 'query contains characters that must be percent-encoded');
  const params = parseParams(rawQuery, 'query');
  for (const p of params) {
    if (p.base === 'sudo') throw new ProxyError('forbidden', 'sudo', { message: 'sudo is not allowed through this proxy' });
    if (p.base === '_method') throw malformed('method-override', 'method override parameters are not allowed');
    if (CREDENTIAL_PARAMS.has(p.base) && !CLIENT_TOKEN_PARAMS.has(p.base)) throw malformed('credential-parameter', `parameter "${p.base}" is not allowed`);
    // Grape picks the response format from ?format= (grape middleware/formatter.rb).
    if (p.base === 'format' && (p.key !== 'format' || p.value !== 'json')) throw malformed('format-parameter', 'only format=json is accepted');
  }
  return params;
}

/**
 * "application/json; charset=utf-8" -> "application/json". Rack splits the type on ";" and
 * ",", Rails takes the first token and Rack's multipart reader the *last* "boundary=" (rack
 * multipart.rb MULTIPART), so only one plain reading is accepted: a type/subtype followed at
 * most by a UTF-8 charset, or, for multipart/form-data, by its boundary.
 */
function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const [type, ...params] = contentType.split(';');
  const media = type!.trim().toLowerCase();
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(media)) throw badContentType();
  const seen = new Set<string>();
  for (const param of params) {
    const m = /^[ \t]*([A-Za-z-]+)=("?)([^"]*)\2[ \t]*$/.exec(param);
    const name = m?.[1]?.toLowerCase();
    if (name === undefined || seen.has(name)) throw badContentType();
    seen.add(name);
    if (name === 'charset' && m![3]!.toLowerCase() === 'utf-8') continue;
    if (name === 'boundary' && media === 'multipart/form-data') continue;
    throw badContentType();
  }
  return media;
}

const badContentType = (): ProxyError =>
  new ProxyError('unsupported-media', 'content-type', { message: 'unsupported content-type parameters', closeConnection: true });
