// Reads the raw header list once: refuses spellings GitLab's stack could read differently
// from Node, pulls out the client's credential, and builds the outbound header set from an
// allowlist, so nothing the client sends reaches GitLab unless it is named here.
import { malformed, ProxyError } from '../errors.ts';
import type { GitHeaderRules } from './git-route.ts';

/** Headers that must appear at most once: Node keeps the first of some duplicates and joins
 *  others, while Puma/Rack keeps the last, so two copies have two readings. */
const SINGLE = new Set([
  'authorization', 'private-token', 'job-token', 'deploy-token', 'sudo', 'host', 'content-length',
  'content-type', 'content-encoding', 'transfer-encoding', 'cookie', 'x-gitlab-static-object-token',
  'x-http-method-override', 'x-http-method', 'x-method-override', 'connection', 'upgrade', 'expect',
]);

/** Forwarded as sent (unless named in Connection). Everything else is dropped. */
const FORWARD = new Set([
  'accept', 'accept-encoding', 'accept-language', 'accept-charset', 'content-type', 'user-agent',
  'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-range', 'range',
  'cache-control',
]);

/** Headers that frame or type the body, which Connection may not make hop-by-hop. */
const BODY_HEADERS = ['content-type', 'content-length', 'transfer-encoding', 'content-encoding', 'host'];

// Rack::MethodOverride reads X-HTTP-Method-Override; other stacks read the two cousins.
const METHOD_OVERRIDE = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

export interface ClientCredential {
  source: 'private-token' | 'bearer' | 'basic' | 'query:private_token' | 'query:access_token';
  token: string;
}

export interface HeaderReading {
  forward: Record<string, string>;
  credential: ClientCredential | undefined;
  host: string | undefined;
  contentLength: number | undefined;
  chunked: boolean;
  contentType: string | undefined;
}

const NO_NAMES: ReadonlySet<string> = new Set();
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** `git`: the extra rules of a git route (src/git/route.ts): more headers forwarded, each at
 *  most once, and a gzip request body. */
export function readHeaders(rawHeaders: readonly string[], git?: GitHeaderRules): HeaderReading {
  const values = new Map<string, string>();
  const forwardNames: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    // Puma maps `_` and `-` to the same env key (puma GHSA-9hf4-67fc-4vf4), so
    // `Private_Token` would be read as PRIVATE-TOKEN behind a stack that does not fold it.
    if (name.includes('_')) throw malformed('underscore-header', 'header names may not contain "_"');
    const prior = values.get(name);
    if (prior !== undefined) {
      if (SINGLE.has(name) || git?.forward.includes(name)) throw malformed('duplicate-header', `duplicate ${name} header`);
      values.set(name, `${prior}, ${value}`);
    } else {
      values.set(name, value);
      if (FORWARD.has(name) || git?.forward.includes(name)) forwardNames.push(name);
    }
  }

  if (values.has('sudo')) throw new ProxyError('forbidden', 'sudo', { message: 'sudo is not allowed through this proxy' });
  for (const name of METHOD_OVERRIDE) {
    if (values.has(name)) throw malformed('method-override', 'method override headers are not allowed');
  }
  // Upgrade would turn the connection into a tunnel the policy cannot see (e.g. /-/cable).
  if (values.has('upgrade')) throw malformed('upgrade', 'protocol upgrades are not allowed');

  const te = values.get('transfer-encoding');
  const cl = values.get('content-length');
  if (te !== undefined && te.toLowerCase() !== 'chunked') throw malformed('transfer-encoding', 'only chunked transfer-encoding is accepted');
  if (te !== undefined && cl !== undefined) throw malformed('te-and-cl', 'both transfer-encoding and content-length');
  if (cl !== undefined && !/^[0-9]{1,15}$/.test(cl)) throw malformed('content-length', 'invalid content-length');
  const ce = values.get('content-encoding');
  if (ce !== undefined && ce.toLowerCase() !== 'identity' && !(git?.gzip && ce.toLowerCase() === 'gzip')) {
    throw new ProxyError('unsupported-media', 'content-encoding', { message: 'compressed request bodies are not accepted', closeConnection: true });
  }

  const host = values.get('host');
  if (host !== undefined && !HOST.test(host)) throw malformed('bad-host', 'invalid host header');

  // Headers the client lists in Connection are hop-by-hop and end here (RFC 9110 7.6.1). One
  // that frames or types the body may not be listed: without its Content-Type, a checked JSON
  // body would reach GitLab untyped, and Rack reads an untyped POST body as a form
  // (rack request.rb form_data?), "_method" and "sudo" included.
  const connection = values.get('connection')?.toLowerCase();
  // Most clients send none, "keep-alive" or "close": nothing to drop, no set to build.
  const hopByHop = connection === undefined || connection === 'keep-alive' || connection === 'close'
    ? NO_NAMES : new Set(connection.split(',').map((s) => s.trim()));
  for (const name of BODY_HEADERS) {
    if (hopByHop.has(name)) throw malformed('hop-by-hop-body-header', `Connection may not name ${name}`);
  }
  const forward: Record<string, string> = {};
  for (const name of forwardNames) if (!hopByHop.has(name)) forward[name] = values.get(name)!;

  return {
    forward,
    credential: credentialFromHeaders(values),
    host,
    contentLength: cl === undefined ? undefined : Number(cl),
    chunked: te !== undefined,
    contentType: values.get('content-type'),
  };
}

function credentialFromHeaders(values: Map<string, string>): ClientCredential | undefined {
  const found: ClientCredential[] = [];
  const pat = values.get('private-token');
  if (pat !== undefined) found.push({ source: 'private-token', token: pat.trim() });
  const auth = values.get('authorization');
  if (auth !== undefined) {
    const m = /^(\S+) +(\S+)$/.exec(auth.trim());
    const scheme = m?.[1]?.toLowerCase();
    if (scheme === 'bearer') found.push({ source: 'bearer', token: m![2]! });
    else if (scheme === 'basic') found.push({ source: 'basic', token: basicPassword(m![2]!) });
    else throw new ProxyError('unauthorized', 'unsupported-authorization');
  }
  if (found.length > 1) throw new ProxyError('unauthorized', 'ambiguous-credentials', { message: 'send one credential only' });
  return found[0];
}

function basicPassword(b64: string): string {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new ProxyError('unauthorized', 'bad-basic-auth');
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) throw new ProxyError('unauthorized', 'bad-basic-auth');
  return decoded.slice(colon + 1);
}
