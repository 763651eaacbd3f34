// Refusals, and the one place that turns a refusal into the answer a GitLab client expects.
// GitLab's REST API answers errors as {"message":"<status> <reason>"} (lib/api/helpers.rb:
// unauthorized!, forbidden!, bad_request!, not_found!), and its GraphqlController as
// {"errors":[{"message":"..."}]} (app/controllers/graphql_controller.rb render_error), so
// vendors' clients report ours exactly as they would report GitLab's.
import { STATUS_CODES } from 'node:http';
import { REASONS, type ErrorCode, type Reason, type Refusal } from './types.ts';

export type { ErrorCode, Reason, Refusal };

const STATUS: Record<ErrorCode, [number, string]> = {
  'malformed': [400, '400 Bad request'],
  'unauthorized': [401, '401 Unauthorized'],
  'forbidden': [403, '403 Forbidden'],
  'not-found': [404, '404 Not Found'],
  'method-not-allowed': [405, '405 Method Not Allowed'],
  'request-timeout': [408, '408 Request Timeout'],
  'payload-too-large': [413, '413 Request Entity Too Large'],
  'headers-too-large': [431, '431 Request Header Fields Too Large'],
  'unsupported-media': [415, '415 Unsupported Media Type'],
  'too-many-requests': [429, '429 Too Many Requests'],
  'bad-gateway': [502, '502 Bad Gateway'],
  'gateway-timeout': [504, '504 Gateway Timeout'],
  'unavailable': [503, '503 Service Unavailable'],
  'internal': [500, '500 Internal Server Error'],
};

export interface RefusalOptions {
  /** Shown to the client; must never contain a secret or a token. */
  message?: string | undefined;
  /** For the audit line only. */
  detail?: string | undefined;
  closeConnection?: boolean;
  format?: 'rest' | 'graphql';
  retryAfterSeconds?: number;
}

/** A refusal as data, with the answer's kind taken from the reason unless given. */
export function refusal(reason: Reason, opts: RefusalOptions & { code?: ErrorCode } = {}): Refusal {
  return {
    code: opts.code ?? REASONS[reason],
    reason,
    message: opts.message,
    detail: opts.detail,
    format: opts.format ?? 'rest',
    closeConnection: opts.closeConnection ?? false,
    retryAfterSeconds: opts.retryAfterSeconds,
  };
}

/**
 * A refusal thrown by a step deep inside the pipeline; the decision (src/decision/decide.ts)
 * catches it and returns it as a denial.
 */
export class ProxyError extends Error {
  readonly refusal: Refusal;

  constructor(code: ErrorCode, reason: Reason, opts: RefusalOptions = {}) {
    super(reason);
    this.name = 'ProxyError';
    this.refusal = refusal(reason, { ...opts, code });
  }

  get code(): ErrorCode {
    return this.refusal.code;
  }

  get reason(): Reason {
    return this.refusal.reason;
  }

  get status(): number {
    return STATUS[this.refusal.code][0];
  }
}

/** The request cannot be read one way only: 400, and the connection is not reused. */
export const malformed = (reason: Reason, message?: string): ProxyError =>
  new ProxyError('malformed', reason, { message: message ?? reason, closeConnection: true });

/** The policy refuses it: 403, the why in the audit line only. */
export const forbidden = (reason: Reason, detail?: string): ProxyError => new ProxyError('forbidden', reason, { detail });

export const statusOf = (r: Refusal): number => STATUS[r.code][0];

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface AnswerContext {
  reqId?: string | undefined;
  /** WWW-Authenticate for a 401 on a git route (src/git/challenge.ts gitChallenge). */
  challenge?: string | undefined;
  /** The request body was not read whole: what is left of it must not be read as a request. */
  bodyUnread?: boolean;
}

/** The one writer of refusals: status, headers and body for every refusal the proxy makes. */
export function answer(r: Refusal, ctx: AnswerContext = {}): Answer {
  const [status, base] = STATUS[r.code];
  const body = r.format === 'graphql'
    ? JSON.stringify({ errors: [{ message: r.message ?? base }] })
    : JSON.stringify({ message: r.message ? `${base} - ${r.message}` : base });
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  if (ctx.reqId) headers['x-request-id'] = ctx.reqId;
  if (r.closeConnection || ctx.bodyUnread) headers.connection = 'close';
  if (r.code === 'unauthorized' && ctx.challenge) headers['www-authenticate'] = ctx.challenge;
  if (r.retryAfterSeconds !== undefined) headers['retry-after'] = String(r.retryAfterSeconds);
  return { status, headers, body };
}

/** An answer as raw HTTP/1.1, for a connection Node's parser has given up on (or never got a
 *  request from), where no ServerResponse exists to write it. */
export function rawAnswer({ status, headers, body }: Answer): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n`;
  for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
  return `${head}\r\n${body}`;
}
