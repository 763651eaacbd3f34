import { describe, expect, it } from 'vitest';
import { cidrList, clientAddress, contains } from './trusted-proxies.ts';
import { incomingRequestId } from './request-id.ts';

describe('trusted proxies', () => {
  const trusted = cidrList(['10.0.0.0/8', '2001:db8::/32', '192.168.1.1']);
  it('parses CIDRs and refuses what is not one', () => {
    expect(contains(trusted, '10.2.3.4')).toBe(true);
    expect(contains(trusted, '::ffff:10.2.3.4')).toBe(true);
    expect(contains(trusted, '192.168.1.2')).toBe(false);
    expect(contains(trusted, '2001:db8::5')).toBe(true);
    for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '::/129']) expect(() => cidrList([bad])).toThrow(/is not an IP address or CIDR/);
  });
  it('reads the client from X-Forwarded-For or Forwarded only behind a trusted proxy', () => {
    const xff = { 'x-forwarded-for': '198.51.100.7, 10.1.1.1' };
    expect(clientAddress('10.0.0.1', xff, trusted)).toBe('198.51.100.7');
    expect(clientAddress('203.0.113.9', xff, trusted)).toBe('203.0.113.9'); // not from a trusted proxy
    expect(clientAddress('10.0.0.1', xff, undefined)).toBe('10.0.0.1');
    // A spoofed left part does not win: the right-most untrusted address is the client.
    expect(clientAddress('10.0.0.1', { 'x-forwarded-for': '1.1.1.1, 198.51.100.7' }, trusted)).toBe('198.51.100.7');
    expect(clientAddress('10.0.0.1', { forwarded: 'for=198.51.100.8;proto=https, for="[2001:db8::1]:443"' }, trusted)).toBe('198.51.100.8');
    expect(clientAddress('10.0.0.1', { forwarded: 'for="198.51.100.9:1234"' }, trusted)).toBe('198.51.100.9');
    expect(clientAddress('10.0.0.1', { 'x-forwarded-for': 'garbage, 10.1.1.1' }, trusted)).toBe('10.1.1.1');
    expect(clientAddress('10.0.0.1', {}, trusted)).toBe('10.0.0.1');
    expect(clientAddress('::ffff:10.0.0.1', { 'x-forwarded-for': '198.51.100.7' }, trusted)).toBe('198.51.100.7');
  });
  it('keeps a well-formed incoming request id from a trusted proxy only', () => {
    expect(incomingRequestId('4bf92f3577b34da6a3ce929d0e0e4736', true)).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(incomingRequestId('4bf92f3577b34da6a3ce929d0e0e4736', false)).toBeUndefined();
    expect(incomingRequestId('bad id with spaces', true)).toBeUndefined();
    expect(incomingRequestId('x'.repeat(129), true)).toBeUndefined();
    expect(incomingRequestId(['a', 'b'], true)).toBeUndefined();
  });
});
