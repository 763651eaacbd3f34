// Request bodies are read whole (bounded), checked, and forwarded as the same bytes with a
// fresh Content-Length: GitLab reads parameters from bodies as well as from the query, so a
// body the proxy has not read could carry sudo, another credential or a method override.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BodyBudget } from './body-budget.ts';
import { malformed, ProxyError } from '../errors.ts';
import type { CanonicalRequest } from './canonicalize.ts';
import { parseJsonStrict } from './json.ts';
import { multipartFieldNames } from './multipart.ts';
import { checkNames, parseParams, rackBase } from './query.ts';

/** Body keys GitLab reads as credentials, impersonation or a method override
 *  (lib/gitlab/auth/auth_finders.rb, lib/api/helpers.rb sudo_identifier, Rack::MethodOverride). */
const FORBIDDEN = new Set(['private_token', 'access_token', 'bearer_token', 'job_token', 'token', 'feed_token', 'rss_token', 'sudo', '_method']);
/** `token` is also the secret a webhook signs with (POST/PUT .../hooks): allowed there only. */
const HOOK_PATH = /\/hooks(?:\/[^/]+)?$/;

const overBudget = (): ProxyError => new ProxyError('unavailable', 'body-budget', { retryAfterSeconds: 1, closeConnection: true });

/** MAX_BUFFERED_BODY_BYTES, and the response whose end gives the body's bytes back. */
export interface BodyHold {
  budget: BodyBudget;
  res: ServerResponse;
}

export function readBody(req: IncomingMessage, limit: number, declared: number | undefined, hold?: BodyHold): Promise<Buffer> {
  if (declared !== undefined && declared > limit) {
    return Promise.reject(new ProxyError('payload-too-large', 'body-too-large', { closeConnection: true }));
  }
  // The bytes reserved for this body are given back when it is dropped (a refusal) or when its
  // response is over, whichever comes first. Not on the request's own 'close': once a response
  // has ended, a request whose body was left unread is detached and never emits it.
  let reserved = 0;
  const giveBack = (): void => {
    hold?.budget.release(reserved);
    reserved = 0;
  };
  const take = (bytes: number): boolean => {
    // A response already over holds nothing: this read fails anyway.
    if (!hold || hold.res.closed) return true;
    if (!hold.budget.reserve(bytes)) return false;
    if (reserved === 0) hold.res.once('close', giveBack);
    reserved += bytes;
    return true;
  };
  if (declared !== undefined && declared > 0 && !take(declared)) return Promise.reject(overBudget());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: ProxyError): void => {
      req.removeListener('data', onData);
      req.pause();
      chunks.length = 0;
      giveBack();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) fail(new ProxyError('payload-too-large', 'body-too-large', { closeConnection: true }));
      else if (declared === undefined && !take(chunk.length)) fail(overBudget());
      else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', () => fail(malformed('body-aborted', 'request body was not received whole')));
    req.once('aborted', () => fail(malformed('body-aborted', 'request body was not received whole')));
  });
}

/** Refuses a body whose parameters GitLab would read as something the policy did not see. */
export function checkBody(body: Buffer, contentType: string | undefined, req: CanonicalRequest): void {
  if (body.length === 0) return;
  const media = req.body?.mediaType;
  let bases: string[];
  if (media === 'application/json') {
    const value = parseJsonStrict(decodeUtf8(body));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw malformed('json-not-object', 'JSON body must be an object');
    }
    // Grape and Rails take JSON keys as they are; the Rack reading ("[sudo]" is "sudo") is
    // applied anyway, so a key is refused if any reader could file it under a refused name.
    bases = Object.keys(value).map(rackBase);
  } else if (media === 'application/x-www-form-urlencoded') {
    bases = parseParams(body.toString('latin1'), 'form body').map((p) => p.base);
  } else if (media === 'multipart/form-data') {
    // Rack files multipart fields with the same normalize_params as form fields.
    bases = checkNames(multipartFieldNames(body, contentType ?? ''), 'multipart body');
  } else {
    // Rack reads a POST without Content-Type as a form (rack request.rb form_data?), and
    // Rails parses other JSON-like types (text/x-json, application/jsonrequest) as JSON.
    throw new ProxyError('unsupported-media', 'content-type', {
      message: 'body must be application/json, application/x-www-form-urlencoded or multipart/form-data',
      closeConnection: true,
    });
  }
  const queryBases = new Set(req.query.map((p) => rackBase(p.key)));
  for (const base of bases) {
    if (base === 'sudo') throw new ProxyError('forbidden', 'sudo', { message: 'sudo is not allowed through this proxy' });
    if (FORBIDDEN.has(base) && !(base === 'token' && HOOK_PATH.test(req.path))) {
      throw malformed('forbidden-body-key', `body parameter "${base}" is not allowed`);
    }
    // Grape lets the body win over the query, Rails the query over the body: a key in both
    // has two readings (grape hash_with_indifferent_access.rb, actionpack http/parameters.rb).
    if (queryBases.has(base)) throw malformed('parameter-in-query-and-body', `parameter "${base}" is in both the query and the body`);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The body as UTF-8, refusing invalid bytes (which a lenient decoder would replace, so the
 *  text checked would differ from the bytes forwarded) and keeping a BOM (JSON.parse refuses it). */
function decodeUtf8(body: Buffer): string {
  try {
    return UTF8.decode(body);
  } catch {
    throw malformed('invalid-utf8', 'invalid UTF-8 in the body');
  }
}
