import type { DatabaseKind } from "./connect";
import { openTestDatabase, type captureLogger } from "./testing";

export type SuiteDatabase = Awaited<ReturnType<typeof openTestDatabase>>;

/**
 * Jest hooks for a describe block that tests against one database: a fresh one
 * opened before its tests (handed to `opened`) and dropped after them, with
 * `tables` emptied and the logger's lines forgotten before each test.
 * Test-only (not built): it needs Jest's globals.
 */
export function useTestDatabase(
  kind: DatabaseKind,
  options: { logger: ReturnType<typeof captureLogger>; tables: string; opened: (db: SuiteDatabase) => void },
): void {
  let db: SuiteDatabase | undefined;
  beforeAll(async () => {
    db = await openTestDatabase(kind, options.logger);
    options.opened(db);
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    await db?.sql.exec(`TRUNCATE ${options.tables} RESTART IDENTITY`);
    options.logger.lines.length = 0;
  });
}
