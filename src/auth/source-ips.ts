// source_ips: a client whose policy lists addresses is accepted only from them (the client
// address, behind TRUSTED_PROXIES the forwarded one). A leaked token is then useless elsewhere.
import { isIP } from 'node:net';
import type { Client } from '../types.ts';

export function sourceAllowed(client: Client, ip: string | null | undefined): boolean {
  if (!client.sourceIps) return true;
  if (typeof ip !== 'string') return false;
  const plain = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip;
  const family = isIP(plain);
  return family !== 0 && client.sourceIps.check(plain, family === 6 ? 'ipv6' : 'ipv4');
}
