// Helpers shared by the attack-family tests: send a request exactly as written (raw path,
// duplicate headers, any body), then check what the GitLab stand-in received and which audit
// line the proxy wrote.
import { request, type IncomingHttpHeaders } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { startHarness, type AuditLine, type Harness, type HarnessOptions } from '../support/harness.ts';
import type { RecordedRequest } from '../support/gitlab-standin.ts';

export interface Sent {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The proxy's request id (it answers refusals with it; GitLab echoes it on forwarded calls). */
  reqId: string | undefined;
}

export interface SendOptions {
  method?: string;
  /** Raw request target, sent byte for byte: "/api/v4/projects/%2e%2e". */
  path: string;
  /** Pairs, so that a name may appear twice and keep its spelling. */
  headers?: readonly (readonly [string, string])[];
  body?: string | Buffer;
  /** Send the body chunked instead of with a Content-Length. */
  chunked?: boolean;
}

/** One request on a fresh connection, with no normalisation of the path or the headers. */
export function send(url: string, opts: SendOptions): Promise<Sent> {
  const { hostname, port } = new URL(url);
  const flat: string[] = [];
  const names = new Set<string>();
  for (const [name, value] of opts.headers ?? []) {
    flat.push(name, value);
    names.add(name.toLowerCase());
  }
  if (!names.has('host')) flat.push('Host', `${hostname}:${port}`);
  if (opts.body !== undefined && !opts.chunked && !names.has('content-length')) flat.push('Content-Length', String(Buffer.byteLength(opts.body)));
  if (opts.chunked) flat.push('Transfer-Encoding', 'chunked');
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port: Number(port), method: opts.method ?? 'GET', path: opts.path, headers: flat, setHost: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const id = res.headers['x-request-id'];
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), reqId: typeof id === 'string' ? id : undefined });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** The audit line of one request, when it is written (when the response has ended). */
export async function auditLine(h: Harness, reqId: string | undefined): Promise<AuditLine> {
  expect(reqId, 'the response carries the proxy request id').toBeDefined();
  return h.waitForAuditLine((l) => l.reqId === reqId, `the audit line of ${reqId}`);
}

/** Fails the test if a request carrying this proxy request id ever reaches the stand-in. */
export function forbidForwarding(h: Harness, reqId: string | undefined, why = 'refused by the proxy'): void {
  if (reqId !== undefined) h.standin.forbid(`${why} (${reqId})`, (r) => r.headers['x-request-id'] === reqId);
}

const liftAfterTest: (() => void)[] = [];

/**
 * Fails the test if any request (or one that `match`es) reaches the stand-in from now until the
 * test has ended (checked after each test, and when the proxy has drained at the end of the
 * file): for raw requests whose pieces have no request id to recognise them by.
 */
export function forbidForRestOfTest(h: Harness, why: string, match?: (r: RecordedRequest) => boolean): void {
  liftAfterTest.push(h.standin.forbid(why, match));
}

/**
 * The request was refused by the proxy: a 4xx in GitLab's JSON format, nothing reached the
 * stand-in (reset before the request), and the audit line says deny with this reason.
 */
export async function expectRefused(h: Harness, sent: Sent, reason: string | RegExp, status?: number): Promise<AuditLine> {
  if (status !== undefined) expect(sent.status, sent.body).toBe(status);
  expect(sent.status, sent.body).toBeGreaterThanOrEqual(400);
  expect(sent.status, sent.body).toBeLessThan(500);
  expect((JSON.parse(sent.body) as { message: string }).message).toMatch(/^4\d\d /);
  forbidForwarding(h, sent.reqId);
  expect(h.standin.requests.map((r) => `${r.method} ${r.url}`), 'nothing reaches GitLab').toEqual([]);
  const line = await auditLine(h, sent.reqId);
  expect(line.decision).toBe('deny');
  if (typeof reason === 'string') expect(line.reason).toBe(reason);
  else expect(line.reason).toMatch(reason);
  return line;
}

/** The one request the stand-in received (reset before the request). */
export async function forwarded(h: Harness, sent: Sent): Promise<RecordedRequest> {
  expect(sent.status, sent.body).toBeLessThan(500);
  // GitLab's answer came back through the proxy, so the request was recorded before it.
  expect(h.standin.requests, 'exactly one request reaches GitLab').toHaveLength(1);
  const first = h.standin.requests[0]!;
  const id = first.headers['x-request-id'];
  if (id !== undefined) h.standin.forbid(`forwarded twice (${id as string})`, (r) => r !== first && r.headers['x-request-id'] === id);
  const line = await auditLine(h, sent.reqId);
  expect(line.decision).toBe('allow');
  return first;
}

/** The proxy still answers an allowed call, and forwards it, after whatever came before. */
export async function expectStillServes(h: Harness, jwt: string, path = '/api/v4/projects/1'): Promise<void> {
  const before = h.standin.requests.length;
  const sent = await send(h.url, { path, headers: [['Authorization', `Bearer ${jwt}`]] });
  expect(sent.status, sent.body).toBe(200);
  expect(h.standin.requests.length).toBe(before + 1);
  expect(h.standin.requests.at(-1)!.url.endsWith(path)).toBe(true);
}

/** Header names the stand-in received, lower-cased, in order. */
export const receivedNames = (rec: RecordedRequest): string[] => rec.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());

/** Exactly one credential reached GitLab: the real token in PRIVATE-TOKEN. */
export function expectOnlyRealToken(h: Harness, rec: RecordedRequest): void {
  const names = receivedNames(rec);
  expect(names.filter((n) => n === 'private-token')).toHaveLength(1);
  expect(rec.headers['private-token']).toBe(h.realToken);
  for (const name of ['authorization', 'cookie', 'job-token', 'deploy-token', 'sudo', 'dpop', 'x-gitlab-static-object-token']) {
    expect(names, name).not.toContain(name);
  }
  expect(names.filter((n) => n.startsWith('gitlab-'))).toEqual([]);
}

export const bearer = (jwt: string): [string, string] => ['Authorization', `Bearer ${jwt}`];
export const json = (value: unknown): { headers: [string, string][]; body: string } => ({
  headers: [['Content-Type', 'application/json']],
  body: typeof value === 'string' ? value : JSON.stringify(value),
});

/**
 * The setup every attack-family file shares: one harness for the file with `policy` as
 * vendor.yaml, a token for the client "vendor", the stand-in's record cleared before each
 * test, and a check after each test that an allowed call still goes through.
 */
export function useAttackHarness(policy: string, ready: (h: Harness, jwt: string) => void, options: Omit<HarnessOptions, 'policies'> = {}): void {
  let harness: Harness;
  let token: string;
  beforeAll(async () => {
    harness = await startHarness({ ...options, policies: { 'vendor.yaml': policy } });
    token = await harness.token('vendor');
    ready(harness, token);
  });
  afterAll(() => harness.close());
  beforeEach(() => harness.standin.reset());
  afterEach(async () => {
    expect(harness.standin.takeViolations(), 'requests that must never reach GitLab').toEqual([]);
    for (const lift of liftAfterTest.splice(0)) lift();
    await expectStillServes(harness, token);
  });
}
