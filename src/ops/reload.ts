// What a reload reads again, and how two readings differ. A reload reads everything first and
// applies it only if all of it loaded: a policy that fails validation, an unreadable token
// file or a certificate that does not match its key is refused, and what was in force stays.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError, pem, readSecrets, readText, type Config, type JwtSettings } from '../config/env.ts';
import { loadPolicyDir, type Policy } from '../policy/load.ts';

export interface LoadedState {
  policy: Policy;
  gitlabToken: string;
  jwt: JwtSettings;
  tls: { cert: string; key: string } | undefined;
}

/** Reads the policy directory, the token files and the TLS files. Throws PolicyError or
 *  ConfigError (never with a secret's value in the message), with `checksum` set to the
 *  policy's when the policy files could be read. */
export function loadState(config: Config): LoadedState {
  const policy = loadPolicyDir(config.policyDir);
  try {
    const { gitlabToken, jwt } = readSecrets(config);
    return { policy, gitlabToken, jwt, tls: config.tls ? readTls(config.tls) : undefined };
  } catch (err) {
    // The policy itself loaded: its checksum goes into the reload-refused line.
    throw Object.assign(err as Error, { checksum: policy.checksum });
  }
}

export function readTls(files: { certFile: string; keyFile: string }): { cert: string; key: string } {
  const cert = pem('TLS_CERT_FILE', files.certFile, 'CERTIFICATE');
  const key = readText('TLS_KEY_FILE', files.keyFile);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) throw new ConfigError(`TLS_KEY_FILE: ${files.keyFile} holds no PEM private key`);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'invalid';
    throw new ConfigError(`TLS_CERT_FILE and TLS_KEY_FILE do not make a usable certificate (${code})`);
  }
  return { cert, key };
}

/** What differs between two readings, by name (never by value). */
export function changes(before: LoadedState, after: LoadedState): string[] {
  const changed: string[] = [];
  if (before.policy.checksum !== after.policy.checksum) changed.push('policy');
  if (before.gitlabToken !== after.gitlabToken) changed.push('gitlab-token');
  if (!sameKey(before.jwt.secret, after.jwt.secret) || before.jwt.publicKeyPem !== after.jwt.publicKeyPem || keyIds(before.jwt) !== keyIds(after.jwt)) changed.push('jwt-keys');
  for (const [name, client] of after.policy.clients) {
    const old = before.policy.clients.get(name);
    if (old && old.upstreamToken?.() !== client.upstreamToken?.()) changed.push(`client-token:${name}`);
    if (old && old.oauth?.secretSha256.toString('hex') !== client.oauth?.secretSha256.toString('hex')) changed.push(`oauth-secret:${name}`);
  }
  if (before.tls?.cert !== after.tls?.cert || before.tls?.key !== after.tls?.key) changed.push('tls-certificate');
  return changed;
}

function sameKey(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Paths whose change may change what a reload reads: the policy directory and its
 *  sub-folders (presets), and each secret file with its directory. */
export function watchedPaths(config: Config, state: LoadedState): string[] {
  const paths = [config.policyDir];
  try {
    for (const e of readdirSync(config.policyDir, { withFileTypes: true })) {
      if (e.isDirectory() && !e.name.startsWith('.')) paths.push(join(config.policyDir, e.name));
    }
  } catch {
    // reported by the reload itself
  }
  // Key settings may list several files or directories, comma separated (key rotation).
  const keyPaths = (spec: string | undefined): string[] => (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const files = [config.gitlabTokenFile, ...keyPaths(config.jwtSecretFile), ...keyPaths(config.jwtPublicKeyFile), config.tls?.certFile, config.tls?.keyFile];
  for (const client of state.policy.clients.values()) files.push(client.upstreamTokenFile, client.oauth?.secretFile);
  for (const f of files) if (f) paths.push(f, dirname(f));
  return paths;
}

/** The verification keys as one comparable string: a key added, removed or changed differs. */
function keyIds(jwt: JwtSettings): string {
  const hmac = (jwt.secrets ?? []).map((k) => `${k.kid}=${Buffer.from(k.secret).toString('base64')}`);
  const pub = (jwt.publicKeys ?? []).map((k) => `${k.kid}=${k.pem}`);
  return [...hmac, ...pub].join('\n');
}
