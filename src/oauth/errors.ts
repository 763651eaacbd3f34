// OAuth errors as RFC 6749 defines them (5.2 for the token endpoint, 4.1.2.1 for the
// authorization endpoint) and RFC 7009 for revocation: a stable `error` code, a short
// description that never holds a token or secret, and the HTTP status.
import type { Reason } from '../types.ts';
export type OAuthErrorCode =
  | 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client'
  | 'unsupported_grant_type' | 'invalid_scope' | 'access_denied' | 'unsupported_response_type'
  | 'server_error' | 'invalid_token' | 'unsupported_token_type';

export class OAuthError extends Error {
  override name = 'OAuthError';
  readonly code: OAuthErrorCode;
  readonly status: number;
  /** The audit reason: "oauth-error" (the code goes in `detail`), or one that says more
   *  ("oauth-refresh-reuse"). */
  readonly reason: Reason;
  /** The grant concerned, for the audit line (a replayed code, a reused refresh token). */
  readonly grant: { id: string; approver: string } | undefined;
  constructor(code: OAuthErrorCode, description: string, opts: { status?: number; reason?: Reason; grant?: { id: string; approver: string } } = {}) {
    super(description);
    this.code = code;
    // RFC 6749 5.2: invalid_client is 401; the other token errors are 400.
    this.status = opts.status ?? (code === 'invalid_client' || code === 'invalid_token' ? 401 : code === 'server_error' ? 500 : 400);
    this.reason = opts.reason ?? 'oauth-error';
    this.grant = opts.grant;
  }

  body(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.code, error_description: this.message };
  }
}
