// A listener that cannot start is a configuration mistake: one line naming the setting, and
// exit 2 (ConfigError), not a stack trace.
import { ConfigError } from '../config/env.ts';

const WHY: Record<string, string> = {
  EADDRINUSE: 'is already in use (another process listens there)',
  EACCES: 'may not be opened by this user (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'is not an address of this machine',
};

export function listenError(setting: 'PORT' | 'ADMIN_PORT', host: string, port: number, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined || !(code in WHY) && code !== 'ENOTFOUND' && code !== 'EAI_AGAIN') return err;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const hostSetting = setting === 'PORT' ? 'HOST' : 'ADMIN_HOST';
  return new ConfigError(`${setting}: ${where} ${WHY[code] ?? `cannot be resolved (${hostSetting})`} (${code})`);
}
