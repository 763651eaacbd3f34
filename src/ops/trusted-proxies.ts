// The client's address behind load balancers. With TRUSTED_PROXIES (CIDRs) set, a request from
// one of those addresses is taken to carry the real client in X-Forwarded-For or Forwarded
// (RFC 7239): the chain is read from the right, past every trusted hop, and the first address
// that is not trusted is the client. Nobody else can set it: a request straight from a vendor
// keeps its socket address, whatever headers it sends.
import { isIP, type BlockList } from 'node:net';
import { contains, plainAddress } from '../config/cidr.ts';

export { cidrList, contains, plainAddress, CidrError, type AddressSet } from '../config/cidr.ts';

/** The addresses of a Forwarded header's for= parameters, in order ("unknown" and obfuscated ids as given). */
function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(',')) {
    for (const pair of element.split(';')) {
      const m = /^\s*for\s*=\s*(?:"([^"]*)"|([^\s;,]*))\s*$/i.exec(pair);
      if (!m) continue;
      let value = m[1] ?? m[2] ?? '';
      const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
      if (v6) value = v6[1]!;
      else if (/^[\d.]+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(':'));
      out.push(value);
    }
  }
  return out;
}

/**
 * The client's address for the audit log and source_ips: the socket's, or, when the socket's
 * peer is a trusted proxy, the right-most untrusted address of Forwarded (preferred) or
 * X-Forwarded-For. A malformed entry ends the walk at the trusted hop that passed it on.
 */
export function clientAddress(
  remote: string | undefined,
  headers: { forwarded?: string | string[] | undefined; 'x-forwarded-for'?: string | string[] | undefined },
  trusted: BlockList | undefined,
): string | null {
  if (remote === undefined) return null;
  let current = plainAddress(remote);
  if (!trusted || !contains(trusted, current)) return current;
  const join = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(',') : v);
  const forwarded = join(headers.forwarded);
  const xff = join(headers['x-forwarded-for']);
  const chain = forwarded !== undefined ? forwardedFor(forwarded) : (xff ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = plainAddress(chain[i]!);
    if (isIP(hop) === 0) return current;
    current = hop;
    if (!contains(trusted, hop)) return hop;
  }
  return current;
}
