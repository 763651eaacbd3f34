// Which store the proxy uses: Redis when REDIS_URL is set (several replicas), else a SQLite
// file (SQLITE_FILE). The Redis client is loaded only when it is used.
import { SqliteStore } from './sqlite.ts';
import type { Store } from './store.ts';

export interface StoreSettings {
  redisUrl: string | undefined;
  sqliteFile: string;
}

export async function openStore(settings: StoreSettings): Promise<Store> {
  if (!settings.redisUrl) return new SqliteStore(settings.sqliteFile);
  const { RedisStore } = await import('./redis.ts');
  return RedisStore.connect(settings.redisUrl);
}
