// The pre-start check of docker-compose.yml's `secrets-check` service: before the proxy's
// container starts, are the secret files there, non-empty and readable by the container user
// (uid 10001)? Compose hands a missing secret file over as an empty directory (or fails with
// "bind source path does not exist"), which says nothing useful; this says what to do in one
// line and exits 2.
//
//   node dist/ops/secrets-check.js DIR NAME...
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface SecretFileRule {
  name: string;
  /** Fewest bytes (after a trailing newline is dropped) the file must hold. */
  minBytes?: number;
}

/** The first problem as one line naming the host path `secrets/NAME`, or null when all is well. */
export function checkSecretFiles(dir: string, rules: readonly SecretFileRule[]): string | null {
  for (const { name, minBytes = 1 } of rules) {
    const shown = `secrets/${name}`;
    const path = join(dir, name);
    let text: string;
    try {
      if (statSync(path).isDirectory()) {
        return `${shown} is a directory, not a file (Compose makes one when the file is missing): remove it and write the file as docs/deploy.md step 1 says`;
      }
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return `${shown} is missing: create it as docs/deploy.md step 1 says`;
      if (code === 'EACCES') return `${shown} is not readable by the container user (uid 10001): sudo chown 10001:10001 ${shown} && sudo chmod 0400 ${shown}`;
      return `${shown} cannot be read (${code ?? 'error'})`;
    }
    const bytes = Buffer.byteLength(text.replace(/\r?\n$/, ''));
    if (bytes === 0) return `${shown} is empty`;
    if (bytes < minBytes) return `${shown} holds ${bytes} bytes; it needs at least ${minBytes}`;
  }
  return null;
}

/** NAME or NAME:MIN_BYTES arguments. */
export function parseRules(args: readonly string[]): SecretFileRule[] {
  return args.map((arg) => {
    const [name, min] = arg.split(':');
    return { name: name!, ...(min ? { minBytes: Number(min) } : {}) };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, ...names] = process.argv.slice(2);
  const problem = dir && names.length > 0 ? checkSecretFiles(dir, parseRules(names)) : 'usage: secrets-check DIR NAME[:MIN_BYTES]...';
  if (problem) {
    console.error(`secrets check: ${problem}`);
    process.exitCode = 2;
  } else {
    console.log('secrets check: ok');
  }
}
