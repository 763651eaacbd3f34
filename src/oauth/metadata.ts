// Discovery documents: RFC 8414 (/.well-known/oauth-authorization-server) and the same fields
// at /.well-known/openid-configuration, where GitLab publishes its own, since vendors look
// there. The proxy issues OAuth access tokens only, no ID tokens.
export function authorizationServerMetadata(base: string): Record<string, unknown> {
  return {
    issuer: base,
    authorization_endpoint: `${base}/oauth/authorize`,
    token_endpoint: `${base}/oauth/token`,
    revocation_endpoint: `${base}/oauth/revoke`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['api', 'read_api', 'read_user', 'read_repository', 'write_repository', 'read_registry', 'write_registry'],
  };
}
