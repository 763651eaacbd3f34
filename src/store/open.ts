// Which store the proxy uses: Redis when REDIS_URL is set (several replicas), else a SQLite
// file (SQLITE_FILE).
import { RedisStore } from './redis.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store } from './store.ts';

export interface StoreSettings {
  redisUrl: string | undefined;
  sqliteFile: string;
}

export async function openStore(settings: StoreSettings): Promise<Store> {
  return settings.redisUrl ? RedisStore.connect(settings.redisUrl) : new SqliteStore(settings.sqliteFile);
}
