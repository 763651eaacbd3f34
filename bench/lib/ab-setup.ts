// What the A/B tools (ab.ts, instructions.ts) share: a temporary folder with the one-client
// bench policy, the upstream's real token, and a JWT for that client signed with a fresh secret.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintToken } from '../../src/auth/mint.ts';
import { BENCH_CLIENT, smallPolicy } from './policy.ts';

export interface AbSetup {
  tmp: string;
  realToken: string;
  jwtSecret: string;
  policyDir: string;
  jwt: string;
}

export async function abSetup(prefix: string): Promise<AbSetup> {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const realToken = `glpat-${randomBytes(12).toString('hex')}`;
  const jwtSecret = randomBytes(32).toString('hex');
  const policyDir = join(tmp, 'policy');
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'bench.yaml'), smallPolicy());
  const jwt = await mintToken({ client: BENCH_CLIENT, audience: 'gitlab-scope-proxy', issuer: undefined, expiresInSeconds: 3600, key: { kind: 'secret', secret: new TextEncoder().encode(jwtSecret) } });
  return { tmp, realToken, jwtSecret, policyDir, jwt };
}
