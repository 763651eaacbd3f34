// `target:`: a rule that may change or delete only an object whose CURRENT state matches,
// read from GitLab with the proxy's token before forwarding. Here: a vendor may re-point or
// delete only its own webhook (its URL pinned), never another team's.
import { beforeEach, describe, expect, it } from 'vitest';
import { auditLine, bearer, json, send, useAttackHarness } from '../security/support.ts';
import type { Harness } from '../support/harness.ts';

const PIN = '"^https://hooks\\\\.vendor\\\\.example/"';
const POLICY = `
clients:
  vendor:
    allow:
      - GET /api/v4/projects/:id
      - method: POST
        path: /api/v4/projects/:id/hooks
        body: { url: { pattern: ${PIN} } }
      - method: PUT
        path: /api/v4/projects/:id/hooks/:hook_id
        body: { url: { pattern: ${PIN}, optional: true } }
        target: { url: { pattern: ${PIN} } }
      - method: DELETE
        path: /api/v4/projects/:id/hooks/:hook_id
        target: { url: { pattern: ${PIN} } }
  other-team:
    allow:
      - POST /api/v4/projects/:id/hooks
`;

let h: Harness;
let vendor: string;
useAttackHarness(POLICY, (harness, token) => {
  h = harness;
  vendor = token;
});

const call = (token: string, method: string, path: string, body?: unknown) => {
  const b = body === undefined ? undefined : json(body);
  return send(h.url, { method, path, headers: [bearer(token), ...(b?.headers ?? [])], ...(b ? { body: b.body } : {}) });
};
const received = () => h.standin.requests.map((r) => `${r.method} ${r.url}`);

let own: number;
let theirs: number;
beforeEach(async () => {
  own = (JSON.parse((await call(vendor, 'POST', '/api/v4/projects/1/hooks', { url: 'https://hooks.vendor.example/in' })).body) as { id: number }).id;
  theirs = (JSON.parse((await call(await h.token('other-team'), 'POST', '/api/v4/projects/1/hooks', { url: 'https://ci.acme.example/hook' })).body) as { id: number }).id;
  h.standin.reset();
});

describe('target: on PUT and DELETE .../hooks/:hook_id', () => {
  it('deletes the vendor\'s own hook, after reading it', async () => {
    const sent = await call(vendor, 'DELETE', `/api/v4/projects/1/hooks/${own}`);
    expect(sent.status).toBe(204);
    expect(received()).toEqual([`GET /api/v4/projects/1/hooks/${own}`, `DELETE /api/v4/projects/1/hooks/${own}`]);
  });

  it('re-points its own hook within the pin', async () => {
    const sent = await call(vendor, 'PUT', `/api/v4/projects/1/hooks/${own}`, { url: 'https://hooks.vendor.example/v2' });
    expect(sent.status).toBe(200);
    expect(received()).toEqual([`GET /api/v4/projects/1/hooks/${own}`, `PUT /api/v4/projects/1/hooks/${own}`]);
  });

  it('refuses to delete or re-point another team\'s hook: only the read reaches GitLab', async () => {
    for (const [method, body] of [['DELETE', undefined], ['PUT', { url: 'https://hooks.vendor.example/stolen' }]] as const) {
      h.standin.reset();
      const sent = await call(vendor, method, `/api/v4/projects/1/hooks/${theirs}`, body);
      expect(sent.status).toBe(403);
      expect(received()).toEqual([`GET /api/v4/projects/1/hooks/${theirs}`]);
      expect(await auditLine(h, sent.reqId)).toMatchObject({ reason: 'target-constraint', detail: 'url (does not match the pattern)' });
    }
  });

  it('refuses a hook it cannot read, and re-pointing its own hook elsewhere', async () => {
    const missing = await call(vendor, 'DELETE', '/api/v4/projects/1/hooks/999999');
    expect(missing.status).toBe(403);
    expect((await auditLine(h, missing.reqId)).reason).toMatch(/^target-unresolved/);
    h.standin.reset();
    const away = await call(vendor, 'PUT', `/api/v4/projects/1/hooks/${own}`, { url: 'https://evil.example/' });
    expect(away.status).toBe(403);
    expect(received()).toEqual([]);
  });
});

// GitLab's params are the query with the body merged over it: a constrained field must be
// checked where GitLab will read it, so one sent on both sides, or on the unchecked side, is
// refused before anything reaches GitLab.
describe('a constrained field is read where GitLab reads it', () => {
  it('forwards a PUT that leaves the optional url out: GitLab keeps the pinned one', async () => {
    const sent = await call(vendor, 'PUT', `/api/v4/projects/1/hooks/${own}`, { push_events: false });
    expect(sent.status).toBe(200);
    expect(received()).toEqual([`GET /api/v4/projects/1/hooks/${own}`, `PUT /api/v4/projects/1/hooks/${own}`]);
  });

  it('refuses a url in the query when the body has none: GitLab would read that one', async () => {
    const path = `/api/v4/projects/1/hooks/${own}?url=https%3A%2F%2Fevil.example%2F`;
    const sent = await call(vendor, 'PUT', path, { push_events: false });
    expect(sent.status).toBe(403);
    expect(received()).toEqual([]);
    expect(await auditLine(h, sent.reqId)).toMatchObject({ reason: 'body-constraint', detail: 'url (also sent in the query)' });
  });

  it('refuses a url on both sides (already at canonicalization: one key, two sources)', async () => {
    for (const [method, path] of [['PUT', `/api/v4/projects/1/hooks/${own}`], ['POST', '/api/v4/projects/1/hooks']] as const) {
      const sent = await call(vendor, method, `${path}?url=https%3A%2F%2Fevil.example%2F`, { url: 'https://hooks.vendor.example/v3' });
      expect(sent.status).toBe(400);
    }
    expect(received()).toEqual([]);
  });
});

