// Reading settings: the error every bad setting throws, and secrets given directly or as a
// file (NAME or NAME_FILE). Shared by src/config/env.ts and the feature modules it calls.
import { readFileSync } from 'node:fs';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/** NAME or NAME_FILE, never both. */
export function secret(env: Env, name: string): { value: string; from: string } | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct && file) throw new ConfigError(`${name} and ${name}_FILE are both set; set one`);
  if (file) {
    const value = readText(`${name}_FILE`, file).replace(/\r?\n$/, '');
    if (!value) throw new ConfigError(`${name}_FILE points at an empty file`);
    return { value, from: `${name}_FILE` };
  }
  return direct ? { value: direct, from: name } : undefined;
}

export function readText(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

