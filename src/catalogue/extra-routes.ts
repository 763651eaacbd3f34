// GitLab routes the OpenAPI description leaves out (../shared/data/README.md: the internal
// API, GraphQL, git over HTTP, OAuth), added by hand with the GitLab source file that
// defines each. Reviewed data: change it when GitLab's routes change.
//
// Templates use the catalogue's syntax (src/catalogue/generate.ts): ":name" one segment,
// "*name" one or more, ":name.git" a segment with a fixed suffix.

export interface ExtraRoute {
  methods: readonly string[];
  template: string;
  tag: string;
  /** Where GitLab defines the route (file path in gitlab-org/gitlab). */
  source: string;
}

export const EXTRA_ROUTES: readonly ExtraRoute[] = [
  // GraphQL: config/routes/api.rb (`match '/api/graphql', via: [:get, :post]`, and glql).
  { methods: ['GET', 'POST'], template: '/api/graphql', tag: 'GraphQL', source: 'config/routes/api.rb' },
  { methods: ['GET', 'POST'], template: '/api/glql', tag: 'GraphQL', source: 'config/routes/api.rb' },

  // Git over HTTP and LFS: config/routes/git_http.rb (scope '*repository_path', with
  // repository_path ending in ".git": Gitlab::PathRegex.repository_git_route_regex).
  { methods: ['GET'], template: '/*namespace/:project.git/info/refs', tag: 'Git HTTP', source: 'config/routes/git_http.rb' },
  { methods: ['POST'], template: '/*namespace/:project.git/git-upload-pack', tag: 'Git HTTP', source: 'config/routes/git_http.rb' },
  { methods: ['POST'], template: '/*namespace/:project.git/git-receive-pack', tag: 'Git HTTP', source: 'config/routes/git_http.rb' },
  { methods: ['POST'], template: '/*namespace/:project.git/info/lfs/objects/batch', tag: 'Git LFS', source: 'config/routes/git_http.rb' },
  { methods: ['POST'], template: '/*namespace/:project.git/info/lfs/objects', tag: 'Git LFS', source: 'config/routes/git_http.rb' },
  { methods: ['GET'], template: '/*namespace/:project.git/info/lfs/objects/*oid', tag: 'Git LFS', source: 'config/routes/git_http.rb' },
  { methods: ['GET', 'POST'], template: '/*namespace/:project.git/info/lfs/locks', tag: 'Git LFS', source: 'config/routes/git_http.rb' },
  { methods: ['POST'], template: '/*namespace/:project.git/info/lfs/locks/verify', tag: 'Git LFS', source: 'config/routes/git_http.rb' },
  { methods: ['POST'], template: '/*namespace/:project.git/info/lfs/locks/:id/unlock', tag: 'Git LFS', source: 'config/routes/git_http.rb' },
  { methods: ['GET', 'PUT'], template: '/*namespace/:project.git/gitlab-lfs/objects/*oid', tag: 'Git LFS', source: 'config/routes/git_http.rb' },

  // The internal API for Workhorse, GitLab Shell, KAS and Pages, authenticated by shared
  // secrets: lib/api/internal/base.rb (allowed, lfs_authenticate, personal_access_token,
  // two_factor_recovery_codes, authorized_keys...), lib/api/internal/kubernetes.rb,
  // lib/api/internal/pages.rb, ee/lib/api/internal/*.rb. Never forwarded (evaluate.ts).
  { methods: ['POST'], template: '/api/v4/internal/allowed', tag: 'Internal', source: 'lib/api/internal/base.rb' },
  { methods: ['POST'], template: '/api/v4/internal/lfs_authenticate', tag: 'Internal', source: 'lib/api/internal/base.rb' },
  { methods: ['POST'], template: '/api/v4/internal/personal_access_token', tag: 'Internal', source: 'lib/api/internal/base.rb' },
  { methods: ['POST'], template: '/api/v4/internal/two_factor_recovery_codes', tag: 'Internal', source: 'lib/api/internal/base.rb' },
  { methods: ['GET'], template: '/api/v4/internal/authorized_keys', tag: 'Internal', source: 'lib/api/internal/base.rb' },
  { methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], template: '/api/v4/internal/*path', tag: 'Internal', source: 'lib/api/internal/*.rb, ee/lib/api/internal/*.rb' },

  // OAuth 2 (Doorkeeper): config/routes.rb `use_doorkeeper` (doorkeeper's
  // lib/doorkeeper/rails/routes.rb) and app/controllers/oauth/*.rb.
  { methods: ['GET', 'POST'], template: '/oauth/authorize', tag: 'OAuth', source: 'config/routes.rb (use_doorkeeper)' },
  { methods: ['POST'], template: '/oauth/token', tag: 'OAuth', source: 'config/routes.rb (use_doorkeeper)' },
  { methods: ['POST'], template: '/oauth/revoke', tag: 'OAuth', source: 'config/routes.rb (use_doorkeeper)' },
  { methods: ['GET'], template: '/oauth/token/info', tag: 'OAuth', source: 'config/routes.rb (use_doorkeeper)' },
  { methods: ['POST'], template: '/oauth/authorize_device', tag: 'OAuth', source: 'config/routes.rb (use_doorkeeper_device_authorization_grant)' },
];
