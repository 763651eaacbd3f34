// The one place that turns a refusal into the answer a GitLab client expects.
// GitLab's REST API answers errors as {"message":"<status> <reason>"} (lib/api/helpers.rb:
// unauthorized!, forbidden!, bad_request!, not_found!), so vendors' clients report ours
// exactly as they would report GitLab's.

export type ErrorCode =
  | 'malformed'            // 400: the request cannot be read one way only
  | 'unauthorized'         // 401: no valid client token
  | 'forbidden'            // 403: the policy does not allow it
  | 'not-found'            // 404
  | 'method-not-allowed'   // 405
  | 'payload-too-large'    // 413
  | 'unsupported-media'    // 415
  | 'too-many-requests'    // 429
  | 'bad-gateway'          // 502: GitLab unreachable
  | 'gateway-timeout'      // 504: GitLab too slow
  | 'unavailable'          // 503: shutting down or audit log unwritable
  | 'internal';            // 500

const STATUS: Record<ErrorCode, [number, string]> = {
  'malformed': [400, '400 Bad request'],
  'unauthorized': [401, '401 Unauthorized'],
  'forbidden': [403, '403 Forbidden'],
  'not-found': [404, '404 Not Found'],
  'method-not-allowed': [405, '405 Method Not Allowed'],
  'payload-too-large': [413, '413 Request Entity Too Large'],
  'unsupported-media': [415, '415 Unsupported Media Type'],
  'too-many-requests': [429, '429 Too Many Requests'],
  'bad-gateway': [502, '502 Bad Gateway'],
  'gateway-timeout': [504, '504 Gateway Timeout'],
  'unavailable': [503, '503 Service Unavailable'],
  'internal': [500, '500 Internal Server Error'],
};

/**
 * A refusal decided by the proxy. `reason` is a stable machine-readable code for the audit
 * log; `detail` may be shown to the client and must never contain a secret or a token.
 * `closeConnection` is set when the request's framing or body cannot be trusted, so the
 * connection must not be reused for another request.
 */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly reason: string;
  readonly detail: string | undefined;
  readonly closeConnection: boolean;

  constructor(code: ErrorCode, reason: string, opts: { detail?: string; closeConnection?: boolean } = {}) {
    super(reason);
    this.name = 'ProxyError';
    this.code = code;
    this.reason = reason;
    this.detail = opts.detail;
    this.closeConnection = opts.closeConnection ?? false;
  }

  get status(): number {
    return STATUS[this.code][0];
  }
}

/** Status and JSON body for a refusal, in GitLab's format. */
export function errorResponse(err: ProxyError): { status: number; body: string } {
  const [status, base] = STATUS[err.code];
  const message = err.detail ? `${base} - ${err.detail}` : base;
  return { status, body: JSON.stringify({ message }) };
}

export const malformed = (reason: string, detail?: string): ProxyError =>
  new ProxyError('malformed', reason, { detail: detail ?? reason, closeConnection: true });
