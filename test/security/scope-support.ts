// Helpers for the scope families (format aliases, reference parameters, quick actions): the
// proxy's scope resolver asks the GitLab stand-in about projects and groups with its own
// token, so "what reached GitLab" means the requests the proxy forwarded for the client,
// which carry its X-Request-Id; the resolver's look-ups do not.
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import type { RecordedRequest } from '../support/gitlab-standin.ts';
import { startHarness, type AuditLine, type Harness } from '../support/harness.ts';
import { auditLine, type Sent } from './support.ts';

/** Requests forwarded for a client (not the scope resolver's look-ups). */
export const forwardedFor = (h: Harness): RecordedRequest[] => h.standin.requests.filter((r) => typeof r.headers['x-request-id'] === 'string');

/** One harness for the file with `policy` as vendor.yaml and a token for "vendor"; the
 *  stand-in's record cleared before each test. */
export function useScopeHarness(policy: string, ready: (h: Harness, jwt: string) => void): void {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness({ policies: { 'vendor.yaml': policy } });
    ready(harness, await harness.token('vendor'));
  });
  afterAll(() => harness.close());
  beforeEach(() => harness.standin.reset());
}

/** Refused with a 4xx in GitLab's format, nothing forwarded, audited as deny with `reason`. */
export async function expectScopeRefused(h: Harness, sent: Sent, reason: string | RegExp, status?: number): Promise<AuditLine> {
  if (status !== undefined) expect(sent.status, sent.body).toBe(status);
  expect(sent.status, sent.body).toBeGreaterThanOrEqual(400);
  expect(sent.status, sent.body).toBeLessThan(500);
  // The audit line is written once the refusal has been answered: nothing can follow it.
  const line = await auditLine(h, sent.reqId);
  expect(forwardedFor(h).map((r) => `${r.method} ${r.url}`), 'nothing is forwarded to GitLab').toEqual([]);
  expect(line.decision).toBe('deny');
  // The audit line's reason (from the closed list) and what it concerned, as one text.
  const said = line.detail ? `${line.reason}: ${line.detail}` : String(line.reason);
  if (typeof reason === 'string') expect(said).toBe(reason);
  else expect(said).toMatch(reason);
  return line;
}

/** The one request forwarded for the client, audited as allow. */
export async function forwardedOnce(h: Harness, sent: Sent): Promise<RecordedRequest> {
  expect(sent.status, sent.body).toBeLessThan(500);
  const line = await auditLine(h, sent.reqId);
  expect(line.decision, String(line.reason)).toBe('allow');
  const recs = forwardedFor(h);
  expect(recs, 'exactly one request is forwarded to GitLab').toHaveLength(1);
  return recs[0]!;
}
