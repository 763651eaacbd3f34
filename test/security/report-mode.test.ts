// Report-only mode: what a client's rules only fail to name is forwarded and audited as
// "would-deny"; every other refusal (canonicalization, fixed denials, bad identifiers, body
// checks) stands, and the same request from an enforce-mode client is refused.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, startHarness, statuses, type Harness } from '../support/harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    policies: {
      'vendors.yaml': `clients:
  trial:
    extends: presets/sentry
    settings: { webhook_url: "https://sentry.example/extensions/gitlab/webhook/" }
    mode: report
  strict:
    extends: presets/sentry
    settings: { webhook_url: "https://sentry.example/extensions/gitlab/webhook/" }
    mode: enforce
`,
    },
  });
});
afterAll(async () => h?.close());

async function send(client: string, method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}) {
  const before = h.standin.requests.length;
  const auditBefore = h.audit.length;
  const headers: Record<string, string> = { authorization: `Bearer ${await h.token(client)}`, ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(h.url + path, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  await res.arrayBuffer();
  await h.waitForAudit(auditBefore + 1);
  const received = h.standin.requests.slice(before);
  return { status: res.status, received, audit: h.audit[auditBefore]! };
}

describe('mode: report', () => {
  it.each([
    ['GET', '/api/v4/projects/1/merge_requests', 'no-rule', /^no rule matches/],
    ['PUT', '/api/v4/projects/1/issues/5', 'no-rule', /^no rule matches/],
    ['POST', '/api/v4/projects/1/merge_requests/2/notes', 'no-rule', /^no rule matches/],
    ['GET', '/api/v4/projects/1/merge_requests.json', 'no-rule', /^no rule matches/],
  ])('forwards %s %s, which no rule allows, as would-deny with the reason', async (method, path, reason, detail) => {
    const r = await send('trial', method, path);
    expect(r.received.map((q) => `${q.method} ${q.url}`)).toEqual([`${method} ${path}`]);
    expect(r.status).not.toBe(403);
    expect(r.audit).toMatchObject({ client: 'trial', decision: 'would-deny', rule: null, status: r.status });
    expect(r.audit.reason).toBe(reason);
    expect(r.audit.detail).toMatch(detail);
  });

  it('still allows what the rules allow, with the rule and its preset line', async () => {
    const r = await send('trial', 'GET', '/api/v4/projects/1');
    expect(r.received).toHaveLength(1);
    expect(r.audit).toMatchObject({ decision: 'allow', reason: null, rule: expect.stringMatching(/^GET \/api\/v4\/projects\/:id \(policies\/presets\/sentry\.yaml:\d+\)$/) });
  });

  it('refuses the same request in enforce mode', async () => {
    const r = await send('strict', 'GET', '/api/v4/projects/1/merge_requests');
    expect(r.status).toBe(403);
    expect(r.received).toHaveLength(0);
    expect(r.audit).toMatchObject({ client: 'strict', decision: 'deny', reason: expect.stringMatching(/^no-rule/) });
  });

  const refusedAnyway: [string, string, string, { body?: unknown; headers?: Record<string, string> }, RegExp][] = [
    ['sudo in the query', 'GET', '/api/v4/projects/1?sudo=root', {}, /^sudo$/],
    ['sudo in a header', 'GET', '/api/v4/projects/1/merge_requests', { headers: { sudo: 'root' } }, /^sudo$/],
    ['sudo in the body', 'POST', '/api/v4/projects/1/merge_requests', { body: { title: 'x', sudo: 'root' } }, /^sudo$/],
    ['a credential parameter', 'GET', '/api/v4/projects/1/merge_requests?job_token=x', {}, /credential/],
    ['a second credential', 'GET', `/api/v4/projects/1/merge_requests?private_token=${randomBytes(8).toString('hex')}`, {}, /ambiguous-credentials/],
    ['double encoding', 'GET', '/api/v4/projects/acme%252Fapp/merge_requests', {}, /double-encoding/],
    ['a method override', 'POST', '/api/v4/projects/1/merge_requests?_method=DELETE', {}, /method-override/],
    ['a webhook token off a hook path', 'POST', '/api/v4/projects/1/merge_requests', { body: { token: 'x' } }, /forbidden-body-key/],
    ['the internal API', 'POST', '/api/v4/internal/allowed', { body: { action: 'git-receive-pack' } }, /^internal-api/],
    ['reading the token', 'GET', '/api/v4/personal_access_tokens/self', {}, /^token-self/],
    ['rotating the token', 'POST', '/api/v4/personal_access_tokens/self/rotate', {}, /^token-self/],
    ['revoking the token through .json', 'DELETE', '/api/v4/personal_access_tokens/self.json', {}, /token-self/],
    ['a non-API path (git push)', 'POST', '/acme/platform/api.git/git-receive-pack', { headers: { 'content-type': 'application/x-git-receive-pack-request' } }, /^not-api/],
    ['GraphQL', 'POST', '/api/graphql', { body: { query: '{ currentUser { username } }' } }, /^not-api/],
    // A rule names the path, but not this spelling of the id: GitLab may read another project.
    ['an ambiguous project id', 'GET', '/api/v4/projects/0001', {}, /^bad-identifier/],
  ];
  it.each(refusedAnyway)('still refuses %s', async (_why, method, path, opts, reason) => {
    const r = await send('trial', method, path, opts);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.received).toHaveLength(0);
    expect(r.audit.decision).toBe('deny');
    expect(r.audit.reason).toMatch(reason);
  });

  // Report mode exists to learn what a vendor does without breaking it, not to grant deletes
  // or memberships: what enforce mode would refuse is forwarded only when it cannot destroy
  // or grant (src/decision/report.ts, classes from src/catalogue/classes.ts).
  const neverReported: [string, string, string, unknown, RegExp][] = [
    ['deleting a project', 'DELETE', '/api/v4/projects/1', undefined, /DELETE \/api\/v4\/projects\/:id .* is destructive/],
    ['deleting a merge request note', 'DELETE', '/api/v4/projects/1/merge_requests/2/notes/3', undefined, / is destructive/],
    ['adding a member', 'POST', '/api/v4/projects/1/members', { user_id: 5, access_level: 40 }, / is membership/],
    ['protecting a branch', 'POST', '/api/v4/projects/1/protected_branches', { name: 'main' }, / is destructive/],
    ['a write GitLab has no route for', 'PUT', '/api/v4/projects/1/issues', {}, /GitLab has no such route/],
    // Found by an outside review: deleting a hook, an integration or a mirror was classed with
    // the exfiltration routes it shares a path with, and (un)protecting a branch as a write.
    // (The sentry preset may delete its own hooks, pinned by target:; a hook's header it may not.)
    ['deleting a project hook\'s custom header', 'DELETE', '/api/v4/projects/1/hooks/7/custom_headers/X-Token', undefined, / is destructive/],
    ['deleting a push mirror', 'DELETE', '/api/v4/projects/1/remote_mirrors/3', undefined, / is destructive/],
    ['deleting an integration', 'DELETE', '/api/v4/projects/1/integrations/slack', undefined, / is destructive/],
    ['deleting a group hook', 'DELETE', '/api/v4/groups/100/hooks/7', undefined, / is destructive/],
    ['unprotecting a branch', 'PUT', '/api/v4/projects/1/repository/branches/main/unprotect', undefined, / is destructive/],
  ];
  it.each(neverReported)('refuses %s in report mode with what enforce mode would have said', async (_why, method, path, body, detail) => {
    const r = await send('trial', method, path, body === undefined ? {} : { body });
    expect(r.status).toBe(403);
    expect(r.received).toHaveLength(0);
    expect(r.audit).toMatchObject({ client: 'trial', decision: 'deny', reason: 'report-mode-write' });
    expect(r.audit.detail).toMatch(/^enforce mode: (no-rule|method-not-allowed) /);
    expect(r.audit.detail).toMatch(detail);
  });

  it('still refuses a dot segment (sent raw: fetch would resolve it)', async () => {
    const before = h.standin.requests.length;
    const auditBefore = h.audit.length;
    const token = await h.token('trial');
    const raw = await rawRequest(h.url, `GET /api/v4/projects/1/merge_requests/%2e%2e/%2e%2e/%2e%2e/user HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    expect(statuses(raw.text)).toEqual([400]);
    await h.waitForAudit(auditBefore + 1);
    expect(h.audit[auditBefore]).toMatchObject({ decision: 'deny', reason: 'dot-segment' });
    expect(h.standin.requests.length).toBe(before);
  });
});
