import type { Database, DatabaseKind } from "./connect";
import { createServerTestDatabase, openOnTestDatabase, openTestDatabase, TcpProxy, type captureLogger, type TestDatabase } from "./testing";

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

/** A server test database reached through a TCP proxy (which a test can reset or silence), and the databases the test opened. */
export interface ProxiedDatabase {
  readonly testDb: TestDatabase;
  readonly proxy: TcpProxy;
  /** The test database's URL, through the proxy unless `direct`. */
  url(direct?: boolean): URL;
  /** Closed after each test. */
  opened(db: Database): Database;
}

/**
 * Jest hooks for a describe block whose tests reach one migrated server
 * database through a fresh TCP proxy each: the databases a test opened are
 * closed and the proxy stopped after it, the database dropped after them all.
 */
export function useProxiedServerDatabase(): ProxiedDatabase {
  let testDb: TestDatabase | undefined;
  let proxy: TcpProxy | undefined;
  const open: Database[] = [];
  beforeAll(async () => {
    testDb = await createServerTestDatabase();
    await openOnTestDatabase(testDb).then((db) => db.close());
  });
  beforeEach(async () => {
    const target = new URL(testDb?.url ?? "");
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
  });
  afterEach(async () => {
    for (const db of open.splice(0)) await db.close();
    await proxy?.stop();
  });
  afterAll(async () => {
    await testDb?.drop();
  });
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is set up in beforeAll/beforeEach`);
    return value;
  };
  return {
    get testDb() {
      return ready(testDb, "the test database");
    },
    get proxy() {
      return ready(proxy, "the proxy");
    },
    url(direct = false) {
      const url = new URL(ready(testDb, "the test database").url ?? "");
      if (!direct) url.port = String(ready(proxy, "the proxy").port);
      return url;
    },
    opened(db) {
      open.push(db);
      return db;
    },
  };
}
