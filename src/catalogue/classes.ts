// Risk classes of GitLab's routes: ONE reviewed list, read top to bottom, the first rule
// matching a route's method and template gives its class and the reason shown to operators
// (check, explain, the audit line of a floor refusal). Every catalogue route gets exactly one
// class (test/catalogue.test.ts checks that, and that every rule here still matches a route).
//
//   credential    creates, rotates, reveals, registers or revokes tokens, keys, deploy tokens,
//                 runner tokens, CI/CD variables, secure files, trigger tokens, agent tokens,
//                 OAuth secrets, impersonation. The hard floor: never forwarded.
//   admin         instance-wide administration; needs `admin: true` on the client.
//   membership    who may access what: members, shares, invitations, access requests.
//   destructive   deletes, transfers, archive, protected-branch/tag/environment and
//                 approval-rule changes, push rules.
//   exfiltration  sends data to a URL of the caller's choosing or hands out a whole copy:
//                 hooks, integrations, mirrors, exports, imports from a URL.
//   write         any other change.
//   read          any other GET/HEAD.
//
// Pattern: "METHODS PATH". METHODS is a comma list or "*"; PATH is matched against the
// catalogue template segment by segment: "**" is zero or more segments, "*" inside a segment is any
// text ("*_tokens"), anything else is compared as written (":id" matches ":id" only).

export type RiskClass = 'credential' | 'admin' | 'membership' | 'destructive' | 'exfiltration' | 'write' | 'read';
export const RISK_CLASSES: readonly RiskClass[] = ['credential', 'admin', 'membership', 'destructive', 'exfiltration', 'write', 'read'];

/** [pattern, class, reason] */
export const CLASS_RULES: readonly (readonly [string, RiskClass, string])[] = [
  // ---- credential: the hard floor -------------------------------------------------------
  ['* /api/v4/internal/**', 'credential', 'the internal API mints tokens for Shell and Workhorse (lib/api/internal/base.rb)'],
  ['* /api/v4/personal_access_tokens/**', 'credential', 'personal access tokens: rotating returns a new secret, revoking breaks the proxy'],
  ['* /api/v4/user/personal_access_tokens', 'credential', 'creates a personal access token for the proxy\'s user'],
  ['* /api/v4/users/:user_id/personal_access_tokens', 'credential', 'creates a personal access token for a user'],
  ['* /api/v4/users/:user_id/impersonation_tokens/**', 'credential', 'impersonation tokens act as another user'],
  ['* /api/v4/*/:id/access_tokens/**', 'credential', 'project and group access tokens: creating or rotating returns a secret'],
  ['* /api/v4/*/:id/service_accounts/**', 'credential', 'service account users and their tokens'],
  ['* /api/v4/*/:id/manage/**', 'credential', 'credentials inventory: lists, rotates and revokes members\' tokens and keys'],
  ['* /api/v4/service_accounts/**', 'credential', 'instance service accounts and their tokens'],
  ['* /api/v4/admin/token', 'credential', 'looks up or revokes any token by its secret'],
  ['* /api/v4/**/deploy_tokens/**', 'credential', 'deploy tokens: creating returns a secret'],
  ['GET,HEAD /api/v4/**/deploy_keys', 'read', 'lists public deploy keys (no secret)'],
  ['GET,HEAD /api/v4/**/deploy_keys/:key_id', 'read', 'shows a public deploy key (no secret)'],
  ['* /api/v4/**/deploy_keys/**', 'credential', 'deploy keys: registering or enabling one gives an SSH key repository access'],
  ['GET,HEAD /api/v4/**/keys', 'read', 'lists public SSH or GPG keys (no secret)'],
  ['GET,HEAD /api/v4/**/keys/:key_id', 'read', 'shows a public SSH or GPG key (no secret)'],
  ['GET,HEAD /api/v4/keys/:id', 'read', 'shows a public SSH key and its owner (no secret)'],
  ['GET,HEAD /api/v4/**/gpg_keys/**', 'read', 'shows public GPG keys (no secret)'],
  ['* /api/v4/**/keys/**', 'credential', 'SSH keys reach GitLab over SSH, past the proxy'],
  ['* /api/v4/**/gpg_keys/**', 'credential', 'GPG keys make commits show as verified for a user'],
  ['* /api/v4/**/ssh_certificates/**', 'credential', 'SSH certificate authorities grant git access over SSH'],
  ['* /api/v4/**/variables/**', 'credential', 'CI/CD variables hold secrets'],
  // A schedule's details carry its variables with their values (lib/api/entities/ci/
  // pipeline_schedule_details.rb: expose :variables, using: Entities::Ci::Variable).
  ['GET,HEAD,PUT /api/v4/projects/:id/pipeline_schedules/:pipeline_schedule_id', 'credential', 'answers with the schedule\'s CI/CD variables and their values'],
  ['POST /api/v4/projects/:id/pipeline_schedules/:pipeline_schedule_id/take_ownership', 'credential', 'answers with the schedule\'s CI/CD variables and their values'],
  ['* /api/v4/projects/:id/secure_files/**', 'credential', 'secure files are CI secrets (keystores, profiles)'],
  ['* /api/v4/projects/:id/triggers/**', 'credential', 'pipeline trigger tokens'],
  ['* /api/v4/projects/:id/cluster_agents/:agent_id/tokens/**', 'credential', 'Kubernetes agent tokens'],
  ['POST /api/v4/runners', 'credential', 'registers a runner and returns its token'],
  ['POST /api/v4/user/runners', 'credential', 'creates a runner and returns its token'],
  ['* /api/v4/runners/reset_registration_token', 'credential', 'resets the instance runner registration token'],
  ['* /api/v4/runners/:id/reset_authentication_token', 'credential', 'returns a new runner authentication token'],
  ['* /api/v4/*/:id/runners/reset_registration_token', 'credential', 'returns a new runner registration token'],
  ['* /api/v4/runners/verify', 'credential', 'checks a runner token'],
  ['DELETE /api/v4/runners', 'credential', 'deletes a runner by its token'],
  ['* /api/v4/jobs/request', 'credential', 'the runner API: hands out jobs with their variables and job token'],
  ['* /api/v4/jobs/:id/**', 'credential', 'the runner API: authenticated by a job token'],
  ['* /api/v4/job/**', 'credential', 'the job-token API'],
  ['POST,PUT /api/v4/applications/**', 'credential', 'OAuth applications: creating or renewing returns a client secret'],
  ['* /api/v4/user/support_pin', 'credential', 'a support PIN identifies the user to GitLab support'],
  ['* /api/v4/users/:id/support_pin', 'credential', 'a support PIN identifies the user to GitLab support'],
  ['* /api/v4/projects/:id/job_token_scope/**', 'credential', 'widens which jobs\' tokens can reach this project'],
  ['* /oauth/**', 'credential', 'OAuth grants and tokens'],
  ['* /api/v4/runners/reset_authentication_token', 'credential', 'returns a new runner authentication token'],
  ['* /api/v4/runner_controllers/:runner_controller_id/tokens/**', 'credential', 'runner controller tokens'],
  ['* /api/v4/users/:id/support_pin/**', 'credential', 'a support PIN identifies the user to GitLab support'],
  ['* /api/v4/ai/**/direct_access', 'credential', 'returns a token for the AI gateway'],
  ['* /api/v4/code_suggestions/direct_access', 'credential', 'returns a token for the AI gateway'],
  ['* /api/v4/ai/**/revoke_token', 'credential', 'revokes an OAuth token'],
  ['* /api/v4/**/conan/*/users/authenticate', 'credential', 'returns a Conan token for the proxy\'s user'],
  ['* /api/v4/projects/:id/error_tracking/client_keys/**', 'credential', 'error tracking client keys (DSNs) authenticate event senders'],
  ['* /*namespace/:project.git/info/lfs/**', 'credential', 'LFS batch answers embed an authorization header'],

  // ---- admin: instance-wide --------------------------------------------------------------
  ['* /api/scim/**', 'admin', 'SCIM provisions and removes users'],
  ['* /api/v4/admin/**', 'admin', 'instance administration'],
  ['* /api/v4/admin_member_roles/**', 'admin', 'instance custom roles'],
  ['* /api/v4/application/**', 'admin', 'instance settings, appearance and statistics'],
  ['* /api/v4/applications/**', 'admin', 'instance OAuth applications'],
  ['* /api/v4/hooks/**', 'admin', 'system hooks receive events from the whole instance'],
  ['* /api/v4/license', 'admin', 'the instance license'],
  ['* /api/v4/license/**', 'admin', 'the instance license'],
  ['* /api/v4/licenses/**', 'admin', 'instance licenses'],
  ['* /api/v4/features/**', 'admin', 'feature flags of the instance'],
  ['* /api/v4/sidekiq/**', 'admin', 'background job queues of the instance'],
  ['* /api/v4/geo*/**', 'admin', 'Geo replication'],
  ['* /api/v4/*repository_storage_moves/**', 'admin', 'moves repositories between storages'],
  ['* /api/v4/*/:id/repository_storage_moves/**', 'admin', 'moves repositories between storages'],
  ['* /api/v4/usage_data/**', 'admin', 'instance usage data'],
  ['* /api/v4/elasticsearch_indexed_namespaces/**', 'admin', 'instance search indexing'],
  ['* /api/v4/runners/all', 'admin', 'every runner of the instance'],
  ['* /api/v4/namespaces/:id/gitlab_subscription', 'admin', 'subscription records'],
  ['* /api/v4/namespaces/:id/minutes/**', 'admin', 'compute minute records'],
  ['* /api/v4/namespaces/:id/subscription_add_on_purchase/**', 'admin', 'subscription records'],
  ['* /api/v4/namespaces/:id/storage/**', 'admin', 'storage limits'],
  ['POST,PUT,PATCH,DELETE /api/v4/users', 'admin', 'creates users'],
  ['PUT,PATCH,DELETE /api/v4/users/:id', 'admin', 'changes or deletes any user'],
  ['POST,PUT,PATCH,DELETE /api/v4/users/:id/*', 'admin', 'blocks, bans, approves or changes a user'],
  ['* /api/v4/users/:id/identities/**', 'admin', 'a user\'s external identities'],
  ['* /api/v4/users/:id/custom_attributes/**', 'admin', 'custom attributes (admin only)'],
  ['* /api/v4/*/:id/custom_attributes/**', 'admin', 'custom attributes (admin only)'],
  ['* /api/v4/users/:id/emails/**', 'admin', 'another user\'s e-mail addresses'],
  ['POST,PUT,PATCH,DELETE /api/v4/broadcast_messages/**', 'admin', 'banners shown to every user'],
  ['POST,PUT,PATCH,DELETE /api/v4/topics/**', 'admin', 'instance topics'],
  ['* /api/v4/audit_events/**', 'admin', 'instance audit events'],
  ['* /api/v4/runners/:id/**', 'admin', 'a runner of the instance'],
  ['* /api/v4/ldap/**', 'admin', 'LDAP directory'],
  ['* /api/v4/*/:id/ldap_*/**', 'admin', 'LDAP group links and sync'],
  ['* /api/v4/*/:id/saml*/**', 'admin', 'SAML links and users'],
  ['* /api/v4/groups/:id/scim/**', 'admin', 'SCIM identities'],
  ['* /api/v4/groups/:id/provisioned_users', 'admin', 'provisioned users'],
  ['* /api/v4/groups/:id/enterprise_users/**', 'admin', 'enterprise users'],
  ['* /api/v4/project_aliases/**', 'admin', 'project aliases (admin only)'],
  ['* /api/v4/container_registry_event/**', 'admin', 'registry notifications (registry token)'],
  ['* /api/v4/discover-cert-based-clusters', 'admin', 'clusters of the instance'],
  ['* /api/v4/runner_controllers/**', 'admin', 'runner controllers of the instance'],
  ['* /api/v4/organizations/**', 'admin', 'organizations of the instance'],
  ['* /api/v4/projects/:id/housekeeping', 'admin', 'repository maintenance'],
  ['* /api/v4/groups/:id/transfer_to_organization', 'admin', 'moves a group between organizations'],

  // ---- membership (changes; reading members is `read`) --------------------------------
  ['POST,PUT,PATCH,DELETE /api/v4/**/members/**', 'membership', 'adds, changes or removes members'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/billable_members/**', 'membership', 'removes billable members'],
  ['* /api/v4/**/invitations/**', 'membership', 'invitations grant access'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/access_requests/**', 'membership', 'approves or denies access requests'],
  ['* /api/v4/*/:id/share/**', 'membership', 'shares with another group'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/member_roles/**', 'membership', 'custom roles'],
  ['* /api/v4/projects/:id/import_project_members/**', 'membership', 'copies another project\'s members'],
  ['* /api/v4/**/placeholder_reassignments/**', 'membership', 'reassigns imported contributions to users'],

  // ---- destructive first where it overlaps: deleting a hook, an integration or a mirror
  // destroys as much as any other delete, and (un)protecting a branch changes who may push.
  ['DELETE /**', 'destructive', 'deletes'],
  ['POST,PUT,PATCH /api/v4/projects/:id/repository/branches/:branch/protect', 'destructive', 'changes branch protection'],
  ['POST,PUT,PATCH /api/v4/projects/:id/repository/branches/:branch/unprotect', 'destructive', 'removes branch protection'],

  // ---- exfiltration: data to a URL of the caller's choosing, or a whole copy -------------
  ['* /api/v4/*/:id/hooks/**', 'exfiltration', 'webhooks send events, and with them content, to any URL'],
  ['* /api/v4/*/:id/integrations/**', 'exfiltration', 'integrations send events and content to other services'],
  ['* /api/v4/projects/:id/services/**', 'exfiltration', 'integrations (old name) send events to other services'],
  ['* /api/v4/projects/:id/remote_mirrors/**', 'exfiltration', 'push mirrors copy the repository to any URL'],
  ['* /api/v4/projects/:id/mirror/**', 'exfiltration', 'pull mirrors fetch from any URL'],
  ['* /api/v4/*/:id/export/**', 'exfiltration', 'a whole copy of the project or group'],
  ['* /api/v4/*/:id/export_relations/**', 'exfiltration', 'a whole copy of the project or group'],
  ['* /api/v4/offline_exports/**', 'exfiltration', 'exports to object storage'],
  ['* /api/v4/projects/:id/snapshot', 'exfiltration', 'a tarball of the whole repository'],
  ['* /api/v4/bulk_imports/**', 'exfiltration', 'imports from another GitLab by URL and token'],
  ['* /api/v4/import/**', 'exfiltration', 'imports from another service by URL and token'],
  ['* /api/v4/projects/remote-import*', 'exfiltration', 'imports a project from a URL'],
  ['POST /api/v4/projects', 'write', 'creates a project (import_url may fetch a URL: constrain the body)'],
  ['* /api/v4/slack/**', 'exfiltration', 'Slack app events'],
  ['* /api/v4/integrations/**', 'exfiltration', 'instance integrations'],

  // ---- destructive -------------------------------------------------------------------------
  ['* /api/v4/*/:id/transfer', 'destructive', 'moves the project or group to another namespace'],
  ['POST,PUT,PATCH,DELETE /api/v4/*/:id/archive', 'destructive', 'archives (makes read-only)'],
  ['POST,PUT,PATCH,DELETE /api/v4/*/:id/unarchive', 'destructive', 'unarchives'],
  ['POST,PUT,PATCH,DELETE /api/v4/*/:id/restore', 'destructive', 'restores a project or group marked for deletion'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/protected_*/**', 'destructive', 'changes branch, tag or environment protection'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/approval_rules/**', 'destructive', 'changes who must approve merge requests'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/approval_settings/**', 'destructive', 'changes approval settings'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/approvals', 'destructive', 'changes approval settings'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/merge_request_approval_setting', 'destructive', 'changes approval settings'],
  ['POST /api/v4/projects/:id/merge_requests/:merge_request_iid/approve', 'destructive', 'adds the proxy user\'s approval, which can satisfy approval rules'],
  ['* /api/v4/**/push_rule', 'destructive', 'changes push rules'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/external_status_checks/**', 'destructive', 'changes merge checks'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/security_settings/**', 'destructive', 'changes security settings'],
  ['POST,PUT,PATCH,DELETE /api/v4/**/freeze_periods/**', 'destructive', 'changes deploy freezes'],

  // ---- the rest ------------------------------------------------------------------------------
  ['GET,HEAD /**', 'read', 'reads'],
  ['POST,PUT,PATCH /**', 'write', 'changes'],
];

/** A pattern segment: compared as a string, or a RegExp when it has a "*", or "**". */
type SegmentPattern = string | RegExp | { any: true };
type Compiled = {
  methods: ReadonlySet<string> | 'any';
  segments: readonly SegmentPattern[];
  /** The pattern's first three segments when they are plain words ("api", "v4", "projects"):
   *  a cheap test that skips most rules for a route. */
  head: readonly (string | undefined)[];
  class: RiskClass;
  reason: string;
  text: string;
};
const ANY_SEGMENTS = { any: true } as const;

const compiled: Compiled[] = CLASS_RULES.map(([text, cls, reason]) => {
  const [methods, path] = text.split(' ') as [string, string];
  const segments = path.slice(1).split('/').map((seg): SegmentPattern => (seg === '**' ? ANY_SEGMENTS : seg.includes('*') ? new RegExp(`^${seg.split('*').map(escape).join('.*')}$`) : seg));
  const head: (string | undefined)[] = [];
  for (const seg of segments.slice(0, 3)) {
    if (typeof seg !== 'string') break;
    head.push(seg);
  }
  return {
    methods: methods === '*' ? 'any' : new Set(methods.split(',')),
    segments,
    head,
    class: cls,
    reason,
    text,
  };
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function fits(rule: Compiled, method: string, template: readonly string[]): boolean {
  if (rule.methods !== 'any' && !rule.methods.has(method)) return false;
  for (let i = 0; i < rule.head.length; i++) if (rule.head[i] !== template[i]) return false;
  return fitsFrom(rule.segments, 0, template, 0);
}

/** "**" is zero or more segments anywhere (as in ".../variables" under any parent); others match one. */
function fitsFrom(pattern: Compiled['segments'], p: number, template: readonly string[], t: number): boolean {
  if (p === pattern.length) return t === template.length;
  const seg = pattern[p]!;
  if (typeof seg === 'object' && 'any' in seg) {
    for (let k = t; k <= template.length; k++) if (fitsFrom(pattern, p + 1, template, k)) return true;
    return false;
  }
  if (t >= template.length) return false;
  const ok = typeof seg === 'string' ? seg === template[t] : seg.test(template[t]!);
  return ok && fitsFrom(pattern, p + 1, template, t + 1);
}

/** The class of one route, with the rule that gave it; undefined when no rule matches. */
export function classify(method: string, template: string): { class: RiskClass; reason: string; rule: string } {
  const segs = template.slice(1).split('/');
  for (const rule of compiled) {
    if (fits(rule, method, segs)) return { class: rule.class, reason: rule.reason, rule: rule.text };
  }
  throw new Error(`no risk class for ${method} ${template}: add a rule to src/catalogue/classes.ts`);
}
