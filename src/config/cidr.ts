// Address lists (CIDRs) for TRUSTED_PROXIES and a client's `source_ips:`: parsing, and
// whether an address is in one. A leaf module (node:net only), so that policy/, config/ and
// ops/ can all use it without importing each other.
import { BlockList, isIP } from 'node:net';

export class CidrError extends Error {
  override name = 'CidrError';
}

/** "10.0.0.0/8", "2001:db8::/32" or a single address. */
export function cidrList(items: readonly string[]): BlockList {
  const list = new BlockList();
  for (const raw of items) {
    const item = raw.trim();
    const [address, bits, extra] = item.split('/');
    const family = isIP(address ?? '');
    const max = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== undefined && (!/^[0-9]{1,3}$/.test(bits) || Number(bits) > max))) {
      throw new CidrError(`"${item}" is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address!, type);
    else list.addSubnet(address!, Number(bits), type);
  }
  return list;
}

/** An IPv4-mapped IPv6 address ("::ffff:10.0.0.5") as the IPv4 address it is. */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** Anything with BlockList's check(address, type): a BlockList, or a policy's client.sourceIps. */
export interface AddressSet {
  check(address: string, type?: 'ipv4' | 'ipv6'): boolean;
}

export function contains(list: AddressSet, address: string): boolean {
  const plain = plainAddress(address);
  const family = isIP(plain);
  return family !== 0 && list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
}

