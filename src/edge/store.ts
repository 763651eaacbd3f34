// Step 0 of starting: the shared store (src/store/), opened once for everything that uses it:
// the OAuth provider, and the per-client limits when REDIS_URL is set (they are counted per
// replica in memory otherwise, so the SQLite file is opened for OAuth only).
import type { Config } from '../config/env.ts';
import { ConfigError } from '../config/read.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';

/** The store this configuration needs, or undefined when nothing needs one. */
export async function openSharedStore(config: Config): Promise<Store | undefined> {
  const forOAuth = config.oauth !== undefined && config.publicUrl !== undefined;
  if (!config.store.redisUrl && !forOAuth) return undefined;
  return openConfiguredStore(config);
}

/** Opens REDIS_URL or SQLITE_FILE; a failure is one line naming the setting, never the URL
 *  (it may hold a password). */
export async function openConfiguredStore(config: Config): Promise<Store> {
  try {
    return await openStore(config.store);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
    throw new ConfigError(config.store.redisUrl ? `REDIS_URL: cannot connect to Redis (${code})` : `SQLITE_FILE: cannot open ${config.store.sqliteFile} (${code})`);
  }
}
