import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { requestLine, type AuditRecord } from './audit.ts';

/** What the line was before requestLine: the record through JSON.stringify, after the time. */
const reference = (r: AuditRecord): string => `${JSON.stringify(r).slice(1)}\n`;
/** requestLine's output without its leading `{"time":"...",` (the clock moves). */
const afterTime = (line: string): string => {
  const m = /^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",/.exec(line);
  expect(m).not.toBeNull();
  return line.slice(m![0].length);
};

// Every kind of character JSON.stringify treats specially: quotes, backslashes, controls,
// DEL, non-ASCII, astral characters and lone surrogates.
const tricky = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u2028', 'é', '😀', '\ud800', '\udc00', 'a', '/') }),
  fc.constantFrom('', 'GET', '/api/v4/projects/42', 'acme-bot'),
);
const number = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 1.5, 1e21, 1e-7, Number.NaN, Number.POSITIVE_INFINITY));

const record: fc.Arbitrary<AuditRecord> = fc.record({
  reqId: tricky, client: fc.option(tricky), jti: fc.option(tricky), method: tricky, path: tricky,
  queryKeys: fc.array(tricky, { maxLength: 4 }), rule: fc.option(tricky), route: fc.option(tricky),
  decision: fc.constantFrom('allow', 'deny', 'local', 'would-deny'), reason: fc.option(tricky),
  detail: fc.option(tricky, { nil: undefined }), status: number, durationMs: number, upstreamMs: fc.option(number),
  bytesIn: number, bytesOut: number, ip: fc.option(tricky), userAgent: fc.option(tricky),
}).chain((base) => fc.record({
  aborted: fc.option(fc.constant(true as const), { nil: undefined }),
  oauth: fc.option(fc.record({ grant: tricky, approver: tricky }, { requiredKeys: ['grant'] }), { nil: undefined }),
}).map(({ aborted, oauth }) => {
  // As auditRecord() builds it: the optional fields come last, and only when set.
  const r = { ...base } as AuditRecord;
  if (aborted) r.aborted = aborted;
  if (oauth) r.oauth = oauth;
  return r;
}));

describe('requestLine', () => {
  it('writes what JSON.stringify wrote for every record, special characters included', () => {
    fc.assert(fc.property(record, (r) => {
      const line = requestLine(r);
      expect(afterTime(line)).toBe(reference(r));
      expect(line.endsWith('}\n')).toBe(true);
      expect(JSON.parse(line)).toMatchObject({ reqId: r.reqId });
    }), { numRuns: 2000 });
  });

  it('writes a plain request line', () => {
    const r: AuditRecord = {
      reqId: 'a1b2', client: 'acme-bot', jti: null, method: 'GET', path: '/api/v4/projects/42', queryKeys: ['per_page'],
      rule: 'GET /api/v4/projects/* (acme.yaml)', route: 'GET /api/v4/projects/:id (Projects)', decision: 'allow', reason: null,
      detail: undefined, status: 200, durationMs: 1.25, upstreamMs: 0.5, bytesIn: 0, bytesOut: 312, ip: '127.0.0.1', userAgent: null,
    };
    expect(afterTime(requestLine(r))).toBe('"reqId":"a1b2","client":"acme-bot","jti":null,"method":"GET","path":"/api/v4/projects/42",' +
      '"queryKeys":["per_page"],"rule":"GET /api/v4/projects/* (acme.yaml)","route":"GET /api/v4/projects/:id (Projects)",' +
      '"decision":"allow","reason":null,"status":200,"durationMs":1.25,"upstreamMs":0.5,"bytesIn":0,"bytesOut":312,' +
      '"ip":"127.0.0.1","userAgent":null}\n');
  });
});
