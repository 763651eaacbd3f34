// The real token's own endpoints (reference item 12): rotating it returns a new secret,
// revoking it breaks every client, reading it shows its metadata and last_used_ips. No rule
// reaches them; only GET .../self passes, for a client granted allow_token_self_read.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.ts';
import { bearer, expectRefused, expectStillServes, forwarded, json, send } from './support.ts';

const RULES = `
    allow:
      - GET,POST,PUT,PATCH,DELETE /api/v4/**`;
const POLICY = `
clients:
  broad:${RULES}
  reader:
    allow_token_self_read: true${RULES}
`;

let h: Harness;
let broad: string;
let reader: string;
beforeAll(async () => {
  h = await startHarness({ policies: { 'clients.yaml': POLICY } });
  broad = await h.token('broad');
  reader = await h.token('reader');
});
afterAll(() => h.close());
beforeEach(() => h.standin.reset());
afterEach(async () => {
  await expectStillServes(h, broad);
  await expectStillServes(h, reader);
});

const call = (jwt: string, method: string, path: string) => {
  const body = method === 'POST' || method === 'PUT' ? json({ expires_at: '2099-01-01' }) : undefined;
  return send(h.url, { method, path, headers: [bearer(jwt), ...(body?.headers ?? [])], ...(body ? { body: body.body } : {}) });
};

const NEVER: [string, string][] = [
  ['POST', '/api/v4/personal_access_tokens/self/rotate'],
  ['POST', '/api/v4/personal_access_tokens/7/rotate'],
  ['POST', '/api/v4/personal_access_tokens/self/rotate.json'],
  ['DELETE', '/api/v4/personal_access_tokens/self'],
  ['DELETE', '/api/v4/personal_access_tokens/7'],
  ['GET', '/api/v4/personal_access_tokens'],
  ['GET', '/api/v4/personal_access_tokens.json'],
  ['GET', '/api/v4/personal_access_tokens/7'],
  ['GET', '/api/v4/personal_access_tokens/self/associations'],
  ['GET', '/api/v4/personal_access_tokens/self.json'],
  ['POST', '/api/v4/user/personal_access_tokens'],
  ['POST', '/api/v4/user/personal_access_tokens.json'],
];

describe('a client with GET,POST,PUT,PATCH,DELETE /api/v4/**', () => {
  it.each<[string, string]>([['GET', '/api/v4/personal_access_tokens/self'], ['HEAD', '/api/v4/personal_access_tokens/self'], ...NEVER])(
    'is refused %s %s', async (method, path) => {
      const sent = await call(broad, method, path);
      if (method === 'HEAD') {
        expect(sent.status).toBe(403);
        expect(h.standin.requests).toEqual([]);
        return;
      }
      await expectRefused(h, sent, /^(token-self|format-suffix: token-self)/, 403);
    });
});

describe('a client with allow_token_self_read', () => {
  it('reads GET /api/v4/personal_access_tokens/self', async () => {
    const sent = await call(reader, 'GET', '/api/v4/personal_access_tokens/self');
    expect(sent.status).toBe(200);
    expect(JSON.parse(sent.body)).toMatchObject({ scopes: ['api'] });
    const rec = await forwarded(h, sent);
    expect(rec.url).toBe('/api/v4/personal_access_tokens/self');
    expect(h.audit.find((l) => l.reqId === sent.reqId)).toMatchObject({ decision: 'allow', rule: 'allow_token_self_read' });
  });

  it.each(NEVER)('is still refused %s %s', async (method, path) => {
    await expectRefused(h, await call(reader, method, path), /^(token-self|format-suffix: token-self)/, 403);
  });

  it('never receives a rotated secret', async () => {
    const sent = await call(reader, 'POST', '/api/v4/personal_access_tokens/self/rotate');
    expect(sent.body).not.toMatch(/"token"/);
    await expectRefused(h, sent, /^token-self/, 403);
  });
});
