import type { Database } from "@candlekeep/db";
import { openOnTestDatabase, type TestDatabase } from "@candlekeep/db/testing";

/** Opens `testDb` (migrated), runs `fn` on it, then closes and drops it, whatever happened. */
export async function withDatabase<T>(testDb: TestDatabase, fn: (db: Database) => Promise<T>): Promise<T> {
  try {
    const db = await openOnTestDatabase(testDb);
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  } finally {
    await testDb.drop();
  }
}
