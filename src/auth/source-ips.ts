// source_ips: a client whose policy lists addresses is accepted only from them (the client
// address, behind TRUSTED_PROXIES the forwarded one). A leaked token is then useless elsewhere.
import { contains } from '../ops/trusted-proxies.ts';
import type { Client } from '../policy/load.ts';

export function sourceAllowed(client: Client, ip: string | null | undefined): boolean {
  if (!client.sourceIps) return true;
  return typeof ip === 'string' && contains(client.sourceIps, ip);
}
