// The presets in policies/presets/, each replayed through the proxy: the vendor's documented
// calls (docs: /work/shared/docs/vendor-endpoints.md) reach the GitLab stand-in and every rule
// of the preset is used by one of them; a shared list of dangerous calls is refused for
// every preset and never reaches the stand-in.
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePreset, presetFiles, readPreset } from '../src/policy/extends.ts';
import type { PolicyProblem } from '../src/policy/load.ts';
import { runCli } from './support/cli.ts';
import { startHarness, type Harness } from './support/harness.ts';

const ROOT = join(import.meta.dirname, '..');
const PRESET_DIR = join(ROOT, 'policies', 'presets');

interface Call {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
  headers?: Record<string, string>;
}

const call = (line: string, body?: Record<string, unknown>): Call => {
  const [method, path] = line.split(' ') as [Call['method'], string];
  return body ? { method, path, body } : { method, path };
};

// Realistic values: project 1 is acme/platform/api, 3 is acme/docs; group 100 is acme.
const SHA = 'e83c5163316f89bfbde7d9ab23ca2e25604af290';
const P = '/api/v4/projects/1';
const webhookSecret = randomBytes(16).toString('hex');
/** Each hook-managing preset's settings.webhook_url here, and where its hooks point. */
const PINS: Record<string, string> = {
  glean: 'https://glean.example.test/gitlab/',
  zoom: 'https://integrations.zoom.example.test/gitlab',
  echoes: 'https://api.echoes.example.test/gitlab',
  calero: 'https://n8n.calero.example.test/webhook/',
  sentry: 'https://sentry.example.test/extensions/gitlab/webhook/',
};
/** In a replayed path: the id of the hook the replay's last POST .../hooks created. */
const HOOK = '{hook}';
/** In a dangerous call: the id of a hook another team created on project 1. */
const OTHER_HOOK = '{other}';
let otherHook = '';

const RENOVATE: Call[] = [
  call('GET /api/v4/user'),
  call('GET /api/v4/version'),
  call('GET /api/v4/users?username=jdoe'),
  call('GET /api/v4/users/jdoe/status'),
  call('GET /api/v4/groups/acme/members'), // a top-level group by bare path, as autodiscovery sends it
  call('GET /api/v4/groups/acme%2Fplatform/members'),
  call('GET /api/v4/groups/acme%2Fplatform/projects?include_subgroups=true'),
  call('GET /api/v4/projects?membership=true&min_access_level=30&archived=false&with_merge_requests_enabled=true&per_page=100'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/members'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/packages?package_name=left-pad'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/releases'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/repository/tree?ref=main&recursive=true'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/repository/tags'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/repository/files/renovate.json?ref=main'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/repository/files/package.json/raw?ref=main'),
  call(`GET /api/v4/projects/acme%2Fplatform%2Fapi/repository/blobs/${SHA}/raw`),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/repository/commits?per_page=1'),
  call(`GET /api/v4/projects/acme%2Fplatform%2Fapi/repository/commits/${SHA}`),
  call(`GET /api/v4/projects/acme%2Fplatform%2Fapi/repository/commits/${SHA}/statuses`),
  call(`POST /api/v4/projects/acme%2Fplatform%2Fapi/statuses/${SHA}`, { state: 'success', name: 'renovate/stability-days' }),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests?state=opened&author_id=1'),
  call('POST /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests', { source_branch: 'renovate/left-pad-2.x', target_branch: 'main', title: 'Update left-pad to v2' }),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3'),
  call('PUT /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3', { title: 'Update left-pad to v2.1' }),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/notes'),
  call('POST /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/notes', { body: '### Release notes' }),
  call('PUT /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/notes/101', { body: '### Release notes (updated)' }),
  call('DELETE /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/notes/101'),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/issues?state=opened&search=Dependency%20Dashboard'),
  call('POST /api/v4/projects/acme%2Fplatform%2Fapi/issues', { title: 'Dependency Dashboard' }),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/issues/7'),
  call('PUT /api/v4/projects/acme%2Fplatform%2Fapi/issues/7', { description: '- [ ] left-pad' }),
];

// renovate-automerge: what automerge adds.
const RENOVATE_AUTOMERGE: Call[] = [
  call('PUT /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/merge', { should_remove_source_branch: true }),
  call('POST /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/approve'),
  call('POST /api/v4/projects/acme%2Fplatform%2Fapi/merge_trains/merge_requests/3', { when_pipeline_succeeds: true }),
  call('GET /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/approval_rules'),
  call('POST /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/approval_rules', { name: 'renovate', approvals_required: 0 }),
  call('PUT /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/approval_rules/8', { approvals_required: 1 }),
  call('DELETE /api/v4/projects/acme%2Fplatform%2Fapi/merge_requests/3/approval_rules/8'),
];

const GLEAN_READ: Call[] = [
  call('GET /api/v4/user'),
  call('GET /api/v4/users?active=true&per_page=100'),
  call('GET /api/v4/groups?per_page=100'),
  call('GET /api/v4/groups/100/members/all'),
  call('GET /api/v4/projects?per_page=100&page=2'),
  call('GET /api/v4/projects/3'),
  call('GET /api/v4/projects/3/members/all'),
  call('GET /api/v4/projects/3/repository/commits?ref_name=main'),
  call('GET /api/v4/projects/3/repository/tree?recursive=true&per_page=100'),
  call('GET /api/v4/projects/3/repository/files/docs%2Fguide.md/raw?ref=main'),
  call('GET /api/v4/projects/3/issues?updated_after=2024-01-01T00:00:00Z'),
  call('GET /api/v4/projects/3/issues/7/notes'),
  call('GET /api/v4/projects/3/merge_requests?state=all'),
  call('GET /api/v4/projects/3/merge_requests/3/notes'),
  call('GET /api/v4/projects/3/merge_requests/3/discussions'),
  call('GET /api/v4/projects/3/wikis?with_content=1'),
];

const REPLAY: Record<string, Call[]> = {
  packit: [
    call('GET /api/v4/user'),
    call('HEAD /api/v4/user'),
    call('GET /api/v4/users?username=packit-bot'),
    call('GET /api/v4/users/42/projects'),
    call('GET /api/v4/groups/acme%2Fplatform'),
    call('GET /api/v4/groups/101/projects'),
    call('GET /api/v4/projects/acme%2Fplatform%2Fapi'),
    call(`GET ${P}/languages`),
    call(`GET ${P}/forks`),
    call(`POST ${P}/fork`, { namespace_path: 'packit-bot' }),
    call(`GET ${P}/members/all`),
    call(`GET ${P}/repository/branches`),
    call(`GET ${P}/repository/branches/main`),
    call(`GET ${P}/repository/tags`),
    call(`GET ${P}/repository/tags/v1.2.0`),
    call(`GET ${P}/repository/commits?ref_name=main`),
    call(`GET ${P}/repository/commits/${SHA}`),
    call(`GET ${P}/repository/commits/${SHA}/statuses`),
    call(`GET ${P}/repository/commits/${SHA}/comments`),
    call(`POST ${P}/repository/commits/${SHA}/comments`, { note: 'Build failed, see the logs.' }),
    call(`GET ${P}/repository/commits/${SHA}/discussions`),
    call(`GET ${P}/repository/tree?ref=main&recursive=true`),
    call(`GET ${P}/repository/files/README%2Emd?ref=main`),
    call(`GET ${P}/repository/contributors`),
    call(`POST ${P}/statuses/${SHA}`, { state: 'running', name: 'packit/rpm-build-fedora-rawhide' }),
    call(`GET ${P}/merge_requests?state=opened`),
    call(`POST ${P}/merge_requests`, { source_branch: 'packit/update', target_branch: 'main', title: 'Update to 1.2.0' }),
    call(`GET ${P}/merge_requests/3`),
    call(`PUT ${P}/merge_requests/3`, { title: 'Update to 1.2.1' }),
    call(`GET ${P}/merge_requests/3/commits`),
    call(`GET ${P}/merge_requests/3/merge_ref`),
    call(`PUT ${P}/merge_requests/3/merge`, { should_remove_source_branch: true }),
    call(`GET ${P}/merge_requests/3/notes`),
    call(`POST ${P}/merge_requests/3/notes`, { body: '/packit build' }),
    call(`GET ${P}/merge_requests/3/notes/101`),
    call(`PUT ${P}/merge_requests/3/notes/101`, { body: 'Builds passed.' }),
    call(`GET ${P}/merge_requests/3/notes/101/award_emoji`),
    call(`POST ${P}/merge_requests/3/notes/101/award_emoji`, { name: 'thumbsup' }),
    call(`DELETE ${P}/merge_requests/3/notes/101/award_emoji/5`),
    call(`GET ${P}/issues?state=opened`),
    call(`POST ${P}/issues`, { title: 'Packit failed on release 1.2.0' }),
    call(`GET ${P}/issues/7`),
    call(`PUT ${P}/issues/7`, { state_event: 'close' }),
    call(`GET ${P}/issues/7/notes`),
    call(`POST ${P}/issues/7/notes`, { body: 'Retrying.' }),
    call(`GET ${P}/issues/7/notes/202`),
    call(`PUT ${P}/issues/7/notes/202`, { body: 'Retried.' }),
    call(`GET ${P}/issues/7/notes/202/award_emoji`),
    call(`POST ${P}/issues/7/notes/202/award_emoji`, { name: 'eyes' }),
    call(`DELETE ${P}/issues/7/notes/202/award_emoji/6`),
    call(`GET ${P}/releases`),
    call(`POST ${P}/releases`, { tag_name: 'v1.2.0', name: '1.2.0' }),
    call(`GET ${P}/releases/v1.2.0`),
    call(`GET ${P}/labels`),
    call(`POST ${P}/labels`, { name: 'packit', color: '#0074d9' }),
  ],
  'glean-readonly': GLEAN_READ,
  glean: [
    ...GLEAN_READ,
    call('GET /api/v4/projects/3/hooks'),
    call('POST /api/v4/projects/3/hooks', {
      url: `${PINS.glean!}webhook`, push_events: true, note_events: true, issues_events: true,
      merge_requests_events: true, wiki_page_events: true, token: webhookSecret,
    }),
  ],
  zoom: [
    call('GET /api/v4/user'),
    call('GET /api/v4/projects?membership=true&simple=true'),
    call('GET /api/v4/projects/acme%2Fdocs'),
    call('GET /api/v4/groups?min_access_level=30'),
    call('GET /api/v4/projects/3/hooks'),
    call('POST /api/v4/projects/3/hooks', { url: `${PINS.zoom!}/acme`, push_events: true, merge_requests_events: true, token: webhookSecret }),
    call(`PUT /api/v4/projects/3/hooks/${HOOK}`, { note_events: true }),
    call(`DELETE /api/v4/projects/3/hooks/${HOOK}`),
  ],
  echoes: [
    call('GET /api/v4/user'),
    call('GET /api/v4/users?per_page=100'),
    call('GET /api/v4/users/42'),
    call('GET /api/v4/namespaces'),
    call('GET /api/v4/groups?top_level_only=true'),
    call('GET /api/v4/groups/100'),
    call('GET /api/v4/groups/100/projects?include_subgroups=true'),
    call('GET /api/v4/groups/100/descendant_groups'),
    call('GET /api/v4/groups/100/members'),
    call('GET /api/v4/groups/100/members/all'),
    call('GET /api/v4/groups/100/merge_requests?state=merged&updated_after=2024-01-01T00:00:00Z'),
    call('GET /api/v4/groups/100/labels'),
    call('POST /api/v4/groups/100/labels', { name: 'echoes:feature', color: '#6699cc' }),
    call('PUT /api/v4/groups/100/labels/31', { new_name: 'echoes:new-feature' }),
    call('DELETE /api/v4/groups/100/labels/31'),
    call('GET /api/v4/groups/100/hooks'),
    call('POST /api/v4/groups/100/hooks', { url: PINS.echoes!, merge_requests_events: true, token: webhookSecret }),
    call(`PUT /api/v4/groups/100/hooks/${HOOK}`, { url: `${PINS.echoes!}/v2`, merge_requests_events: true }),
    call(`DELETE /api/v4/groups/100/hooks/${HOOK}`),
    call(`GET ${P}`),
    call(`GET ${P}/users`),
    call(`GET ${P}/merge_requests?state=merged`),
    call(`GET ${P}/merge_requests/3`),
    call(`PUT ${P}/merge_requests/3`, { add_labels: 'echoes:feature' }),
    call(`GET ${P}/merge_requests/3/commits`),
    call(`GET ${P}/merge_requests/3/closes_issues`),
    call(`GET ${P}/merge_requests/3/resource_label_events`),
    call(`GET ${P}/merge_requests/3/discussions`),
    call(`GET ${P}/issues/7/resource_label_events`),
    call(`GET ${P}/repository/commits/${SHA}`),
    call(`GET ${P}/repository/tags`),
    call(`GET ${P}/hooks`),
    call(`POST ${P}/hooks`, { url: PINS.echoes!, merge_requests_events: true, token: webhookSecret }),
    call(`PUT ${P}/hooks/${HOOK}`, { url: `${PINS.echoes!}/v2` }),
    call(`DELETE ${P}/hooks/${HOOK}`),
  ],
  calero: [
    call('GET /api/v4/user'),
    call('GET /api/v4/users?per_page=100'),
    call('GET /api/v4/users/jdoe/projects'),
    call('GET /api/v4/groups/100/billable_members'),
    call('GET /api/v4/groups/100/members/all'),
    call('GET /api/v4/projects/acme%2Fdocs'),
    call('GET /api/v4/projects/acme%2Fdocs/issues?state=opened'),
    call('POST /api/v4/projects/acme%2Fdocs/issues', { title: 'Seat review for Q3' }),
    call('GET /api/v4/projects/acme%2Fdocs/issues/7'),
    call('PUT /api/v4/projects/acme%2Fdocs/issues/7', { state_event: 'close' }),
    call('POST /api/v4/projects/acme%2Fdocs/issues/7/notes', { body: 'Done.' }),
    call('GET /api/v4/projects/acme%2Fdocs/releases'),
    call('POST /api/v4/projects/acme%2Fdocs/releases', { tag_name: 'v2.0.0', name: '2.0.0' }),
    call('GET /api/v4/projects/acme%2Fdocs/releases/v2.0.0'),
    call('PUT /api/v4/projects/acme%2Fdocs/releases/v2.0.0', { description: 'Seat changes' }),
    call('DELETE /api/v4/projects/acme%2Fdocs/releases/v2.0.0'),
    call('GET /api/v4/projects/acme%2Fdocs/repository/files/seats%2Freport.csv?ref=main'),
    call('GET /api/v4/projects/acme%2Fdocs/repository/tree'),
    call('POST /api/v4/projects/acme%2Fdocs/hooks', { url: `${PINS.calero!}gitlab`, issues_events: true, token: webhookSecret }),
    call(`GET /api/v4/projects/acme%2Fdocs/hooks/${HOOK}`),
    call(`DELETE /api/v4/projects/acme%2Fdocs/hooks/${HOOK}`),
  ],
  renovate: RENOVATE,
  'renovate-automerge': [...RENOVATE, ...RENOVATE_AUTOMERGE],
  backstage: [
    call('GET /api/v4/users?active=true&per_page=100'),
    call('GET /api/v4/users/42'),
    call('GET /api/v4/groups?all_available=true'),
    call('GET /api/v4/groups/100'),
    call('GET /api/v4/groups/100/projects?include_subgroups=true'),
    call('GET /api/v4/groups/100/members/all'),
    call('GET /api/v4/groups/100/search?scope=blobs&search=filename:catalog-info.yaml'),
    call('GET /api/v4/projects?archived=false&per_page=100'),
    call('GET /api/v4/projects/acme%2Fplatform%2Fweb'),
    call('GET /api/v4/projects/2'),
    call('GET /api/v4/projects/2/repository/commits?ref_name=main&per_page=1'),
    call('HEAD /api/v4/projects/2/repository/files/catalog-info.yaml?ref=main'),
  ],
  sentry: [
    call('GET /api/v4/user'),
    call('GET /api/v4/groups/100'),
    call('GET /api/v4/groups/100/projects?include_subgroups=true'),
    call('GET /api/v4/projects?membership=true&search=api'),
    call(`GET ${P}`),
    call(`GET ${P}/issues?search=TypeError`),
    call(`POST ${P}/issues`, { title: 'TypeError: cannot read properties of undefined', description: 'Sentry issue API-123' }),
    call(`POST ${P}/issues/7/notes`, { body: 'Linked to Sentry issue API-123' }),
    call(`GET ${P}/repository/commits?since=2024-01-01T00:00:00Z`),
    call(`GET ${P}/repository/commits/${SHA}`),
    call(`GET ${P}/repository/commits/${SHA}/diff`),
    call(`GET ${P}/repository/compare?from=${SHA.slice(0, 12)}&to=main`),
    call(`HEAD ${P}/repository/files/src%2Fmain.ts?ref=main`),
    call(`GET ${P}/repository/files/src%2Fmain.ts?ref=main`),
    call(`GET ${P}/repository/files/src%2Fmain.ts/blame?ref=main`),
    call(`POST ${P}/hooks`, { url: PINS.sentry!, push_events: true, merge_requests_events: true, token: webhookSecret }),
    call(`DELETE ${P}/hooks/${HOOK}`),
  ],
};

/** Calls no preset may make: refused before GitLab sees them. */
const DANGEROUS: (Call & { why: string })[] = [
  { why: 'delete a project', ...call(`DELETE ${P}`) },
  { why: 'delete a project by path', ...call('DELETE /api/v4/projects/acme%2Fplatform%2Fapi') },
  { why: 'delete a group', ...call('DELETE /api/v4/groups/100') },
  { why: 'make a project public', ...call(`PUT ${P}`, { visibility: 'public' }) },
  { why: 'transfer a project', ...call(`PUT ${P}/transfer`, { namespace: 'other' }) },
  { why: 'add a project member', ...call(`POST ${P}/members`, { user_id: 9, access_level: 50 }) },
  { why: 'raise a member', ...call(`PUT ${P}/members/9`, { access_level: 50 }) },
  { why: 'remove a member', ...call(`DELETE ${P}/members/9`) },
  { why: 'add a group member', ...call('POST /api/v4/groups/100/members', { user_id: 9, access_level: 50 }) },
  { why: 'share a project with a group', ...call(`POST ${P}/share`, { group_id: 102, group_access: 50 }) },
  { why: 'create a project access token', ...call(`POST ${P}/access_tokens`, { name: 'x', scopes: ['api'] }) },
  { why: 'create a group access token', ...call('POST /api/v4/groups/100/access_tokens', { name: 'x', scopes: ['api'] }) },
  { why: 'create a token for a user', ...call('POST /api/v4/users/1/personal_access_tokens', { name: 'x', scopes: ['api'] }) },
  { why: 'create an impersonation token', ...call('POST /api/v4/users/1/impersonation_tokens', { name: 'x', scopes: ['api'] }) },
  { why: 'create a token for the proxy user', ...call('POST /api/v4/user/personal_access_tokens', { name: 'x', scopes: ['k8s_proxy'] }) },
  { why: 'rotate the proxy token', ...call('POST /api/v4/personal_access_tokens/self/rotate') },
  { why: 'revoke the proxy token', ...call('DELETE /api/v4/personal_access_tokens/self') },
  { why: 'revoke the proxy token (.json)', ...call('DELETE /api/v4/personal_access_tokens/self.json') },
  { why: 'read the proxy token', ...call('GET /api/v4/personal_access_tokens/self') },
  { why: 'list tokens', ...call('GET /api/v4/personal_access_tokens') },
  { why: 'add a deploy key with write access', ...call(`POST ${P}/deploy_keys`, { title: 'x', key: 'ssh-ed25519 AAAA', can_push: true }) },
  { why: 'create a deploy token', ...call(`POST ${P}/deploy_tokens`, { name: 'x', scopes: ['write_repository'] }) },
  { why: 'read CI/CD variables', ...call(`GET ${P}/variables`) },
  { why: 'read group CI/CD variables', ...call('GET /api/v4/groups/100/variables') },
  { why: 'run a pipeline', ...call(`POST ${P}/pipeline?ref=main`) },
  { why: 'unprotect a branch', ...call(`DELETE ${P}/protected_branches/main`) },
  { why: 'create a user', ...call('POST /api/v4/users', { username: 'x', email: 'x@example.test' }) },
  { why: 'add a system hook', ...call('POST /api/v4/hooks', { url: 'https://evil.example.test' }) },
  { why: 'change instance settings', ...call('PUT /api/v4/application/settings', { signup_enabled: true }) },
  { why: 'read the instance license', ...call('GET /api/v4/license') },
  { why: 'delete another team\'s webhook', ...call(`DELETE ${P}/hooks/${OTHER_HOOK}`) },
  { why: 're-point another team\'s webhook', ...call(`PUT ${P}/hooks/${OTHER_HOOK}`, { url: 'https://evil.example.test/' }) },
  { why: 're-point it into the vendor\'s own pin', ...call(`PUT ${P}/hooks/${OTHER_HOOK}`, { url: 'https://api.echoes.example.test/gitlab' }) },
  { why: 'create a webhook pointing elsewhere', ...call(`POST ${P}/hooks`, { url: 'https://evil.example.test/', push_events: true }) },
  { why: 'commit a CI configuration', ...call(`POST ${P}/repository/files/.gitlab-ci.yml`, { branch: 'main', content: 'x: {script: env}', commit_message: 'ci' }) },
  { why: 'rotate a project access token', ...call(`POST ${P}/access_tokens/self/rotate`) },
  { why: 'add an SSH key to the proxy user', ...call('POST /api/v4/user/keys', { title: 'x', key: 'ssh-ed25519 AAAA' }) },
  { why: 'sudo in the query', ...call(`GET ${P}?sudo=root`) },
  { why: 'sudo in a header', ...call(`GET ${P}`), headers: { sudo: 'root' } },
  { why: 'sudo in the body', ...call(`POST ${P}/issues`, { title: 'x', sudo: 'root' }) },
  { why: 'internal API', ...call('POST /api/v4/internal/allowed', { action: 'git-receive-pack' }) },
  { why: 'git push', ...call('POST /acme/platform/api.git/git-receive-pack'), headers: { 'content-type': 'application/x-git-receive-pack-request' } },
  { why: 'git push discovery', ...call('GET /acme/platform/api.git/info/refs?service=git-receive-pack') },
  { why: 'GraphQL mutation', ...call('POST /api/graphql', { query: 'mutation { projectDelete(input: {fullPath: "acme/platform/api"}) { errors } }' }) },
  { why: 'OAuth token', ...call('POST /oauth/token', { grant_type: 'refresh_token' }) },
];

const PRESETS = presetFiles(PRESET_DIR).map((f) => basename(f).replace(/\.ya?ml$/, ''));
const asksForPin = (name: string): boolean =>
  compilePreset(readPreset(join(PRESET_DIR, `${name}.yaml`), `presets/${name}`), [])?.settings.has('webhook_url') === true;

function presetRules(name: string): string[] {
  const problems: PolicyProblem[] = [];
  const preset = compilePreset(readPreset(join(PRESET_DIR, `${name}.yaml`), `presets/${name}`), problems);
  expect(problems).toEqual([]);
  return preset!.rules.map((r) => r.text);
}

let h: Harness;
beforeAll(async () => {
  const clients = PRESETS.map((p) => `  ${p}:\n    extends: presets/${p}\n${asksForPin(p) ? `    settings: { webhook_url: "${PINS[p]!}" }\n` : ''}`).join('');
  const otherTeam = '  other-team:\n    allow:\n      - POST /api/v4/projects/:id/hooks\n';
  h = await startHarness({ policies: { 'vendors.yaml': `clients:\n${clients}${otherTeam}` } });
  const created = await send(await h.token('other-team'), call(`POST ${P}/hooks`, { url: 'https://ci.acme.example.test/hook', push_events: true }));
  otherHook = String((JSON.parse(created.body) as { id: number }).id);
});
afterAll(async () => h?.close());

async function send(token: string, c: Call): Promise<{ status: number; forwarded: boolean; received: number; targetRead: boolean; auditLine: Harness['audit'][number]; body: string }> {
  const before = h.standin.requests.length;
  const auditBefore = h.audit.length;
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...c.headers };
  if (c.body) headers['content-type'] = 'application/json';
  const res = await fetch(h.url + c.path, { method: c.method, headers, ...(c.body ? { body: JSON.stringify(c.body) } : {}) });
  const body = await res.text();
  await h.waitForAudit(auditBefore + 1);
  const got = h.standin.requests.slice(before);
  // A rule with target: reads the object (GET on the same path) before forwarding the call.
  const last = got.at(-1);
  const forwarded = last !== undefined && last.method === c.method && last.url === c.path
    && got.slice(0, -1).every((r) => r.method === 'GET' && r.url === c.path) && got.length <= 2;
  const targetRead = c.method !== 'GET' && got[0]?.method === 'GET' && got[0].url === c.path;
  return { status: res.status, forwarded, received: got.length, targetRead, auditLine: h.audit[auditBefore]!, body };
}

describe('presets', () => {
  it('replays every preset that asks for a webhook URL with one', () => {
    expect(Object.keys(PINS).sort()).toEqual(PRESETS.filter(asksForPin).sort());
  });

  it('are all in the replay list, and every preset in it exists', () => {
    expect(PRESETS.sort()).toEqual(Object.keys(REPLAY).sort());
    expect(PRESETS).toEqual(expect.arrayContaining(['zoom', 'glean-readonly', 'glean', 'echoes', 'packit', 'calero', 'renovate', 'renovate-automerge', 'backstage', 'sentry']));
  });

  it('pass check, with the schema line and their sources in comments', async () => {
    const r = await runCli(['check', '--policies', join(ROOT, 'policies')]);
    expect(r.stdout).toMatch(new RegExp(`^ok: .*; ${PRESETS.length} presets`));
    expect(r.code).toBe(0);
    for (const p of PRESETS) {
      const text = readPreset(join(PRESET_DIR, `${p}.yaml`), p).text;
      expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../policy.schema.json');
      expect(text).toMatch(/Source/);
      expect(text).toMatch(/Not covered/);
    }
  });

  for (const name of Object.keys(REPLAY)) {
    describe(name, () => {
      it('forwards every documented call, and each rule is used by one of them', async () => {
        const token = await h.token(name);
        const used = new Set<string>();
        let hook = '';
        for (const template of REPLAY[name]!) {
          const c = { ...template, path: template.path.replace(HOOK, hook) };
          const r = await send(token, c);
          if (c.method === 'POST' && c.path.endsWith('/hooks')) hook = String((JSON.parse(r.body) as { id: number }).id);
          expect({ call: `${c.method} ${c.path}`, forwarded: r.forwarded, decision: r.auditLine.decision })
            .toEqual({ call: `${c.method} ${c.path}`, forwarded: true, decision: 'allow' });
          // The rule keeps the preset line it was written on.
          const m = /^(.*) \((policies\/presets\/[a-z-]+\.yaml):(\d+)\)$/.exec(r.auditLine.rule ?? '');
          expect(m?.[2]).toBe(`policies/presets/${name}.yaml`);
          used.add(m![1]!);
        }
        expect([...used].sort()).toEqual(presetRules(name).sort());
      });

      it('refuses every dangerous call before GitLab sees it', async () => {
        const token = await h.token(name);
        for (const dangerous of DANGEROUS) {
          const c = { ...dangerous, path: dangerous.path.replace(OTHER_HOOK, otherHook) };
          const r = await send(token, c);
          // A target: rule may read the hook first (GET on its path); nothing else reaches GitLab.
          const reached = r.received - (r.targetRead ? 1 : 0);
          expect({ why: c.why, reached, refused: r.status >= 400 && r.status < 500, decision: r.auditLine.decision })
            .toEqual({ why: c.why, reached: 0, refused: true, decision: 'deny' });
        }
      });
    });
  }
});
