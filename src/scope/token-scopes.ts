// `scopes:` shorthands mirroring GitLab's token scopes (docs "Personal access token scopes").
export const TOKEN_SCOPES = ['read_api', 'read_user', 'read_repository', 'write_repository'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];
