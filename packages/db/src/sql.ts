import type { Database } from "./connect";

/**
 * The smallest raw-SQL surface shared by the server pool and the embedded engine.
 * Used for what Prisma cannot do fast or at all: bulk upserts, migrations,
 * session-level advisory locks and catalogue queries.
 */
export interface SqlResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface SqlRunner {
  /** One parameterised statement ($1, $2, …). */
  query<Row extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<SqlResult<Row>>;
  /** Several statements without parameters (migration files). */
  exec(text: string): Promise<void>;
}

/**
 * Runs `fn` between BEGIN and COMMIT on `connection`. On any failure the
 * transaction is rolled back (a ROLLBACK that fails too, say on a lost
 * connection, is ignored) and the original error raised.
 */
export async function inTransaction<T>(connection: SqlRunner, fn: () => Promise<T>): Promise<T> {
  await connection.exec("BEGIN");
  try {
    const result = await fn();
    await connection.exec("COMMIT");
    return result;
  } catch (error) {
    await connection.exec("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/**
 * A recursive CTE `name(value)` of the distinct values of `column` in `table`
 * among the rows where `where` holds (bare column names), found by skipping
 * through an index that leads with `where`'s equality columns and then `column`:
 * one index probe per distinct value (a "loose index scan"), so its cost grows
 * with the distinct values, not with the rows. NULLs are skipped, but the last
 * row, from the probe that found nothing more, is NULL: select `value IS NOT NULL`.
 */
export function distinctValuesCte(name: string, table: string, column: string, where = "true"): string {
  return `${name}(value) AS (
  (SELECT ${column} FROM ${table} WHERE ${where} ORDER BY ${column} LIMIT 1)
  UNION ALL
  SELECT (SELECT ${column} FROM ${table} WHERE ${where} AND ${column} > previous.value ORDER BY ${column} LIMIT 1)
  FROM ${name} AS previous WHERE previous.value IS NOT NULL
)`;
}

/**
 * Runs the read `text` with PostgreSQL's JIT compiler off, on the server in a
 * transaction of its own on one connection (SET LOCAL ends with it). Why: the
 * server compiles a query whose estimated cost passes jit_above_cost (100,000 by
 * default) and inlines and optimises past 500,000, and reads over thousands of
 * series through index range scans are estimated that high while they run in
 * milliseconds, so compiling would cost more than the query. The embedded
 * engine has no JIT, and its one connection is shared: no transaction there.
 */
export async function readWithoutJit<Row extends object>(db: Pick<Database, "kind" | "sql" | "session">, text: string, params: readonly unknown[]): Promise<Row[]> {
  if (db.kind !== "server") return (await db.sql.query<Row>(text, params)).rows;
  return db.session((connection) =>
    inTransaction(connection, async () => {
      await connection.exec("SET LOCAL jit = off");
      return (await connection.query<Row>(text, params)).rows;
    }),
  );
}
