// Requests refused before the pipeline runs (by Node's parser or the HTTP adapter) are still
// answered in GitLab's JSON, audited, and never forwarded.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rawRequest, startHarness, statuses, type Harness } from '../support/harness.ts';

const POLICY = 'clients:\n  c:\n    allow: [GET /api/v4/projects/:id]\n';

describe('refusals at the server edge', () => {
  let h: Harness;
  let jwt: string;
  beforeAll(async () => {
    h = await startHarness({ policies: { 'p.yaml': POLICY } });
    jwt = await h.token('c');
  });
  afterAll(() => h.close());
  beforeEach(() => h.standin.reset());

  const lastAudit = async (): Promise<(typeof h.audit)[number]> => {
    const before = h.audit.length;
    await h.waitForAudit(before === 0 ? 1 : before).catch(() => undefined);
    return h.audit[h.audit.length - 1]!;
  };

  it.each([
    ['CONNECT', `CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n`, 405, 'method'],
    ['no Host on HTTP/1.1', `GET /api/v4/projects/1 HTTP/1.1\r\nPRIVATE-TOKEN: JWT\r\n\r\n`, 400, 'unreadable-request'],
    ['no Host on HTTP/1.0', `GET /api/v4/projects/1 HTTP/1.0\r\nPRIVATE-TOKEN: JWT\r\n\r\n`, 400, 'unreadable-request'],
    ['a Host the adapter cannot read', `GET /api/v4/projects/1 HTTP/1.1\r\nHost: a b\r\nPRIVATE-TOKEN: JWT\r\n\r\n`, 400, 'unreadable-request'],
  ])('%s', async (_name, raw, status, reason) => {
    const before = h.audit.length;
    const reply = await rawRequest(h.url, raw.replace('JWT', jwt));
    expect(statuses(reply.text)).toEqual([status]);
    expect(reply.text).toMatch(/\{"message":"\d{3} [^"]*"\}/);
    await h.waitForAudit(before + 1);
    const line = await lastAudit();
    expect(line).toMatchObject({ decision: 'deny', reason, status });
    expect(h.standin.requests).toHaveLength(0);
    // The proxy still serves.
    expect((await fetch(`${h.url}/api/v4/projects/1`, { headers: { 'PRIVATE-TOKEN': jwt } })).status).toBe(200);
  });
});
