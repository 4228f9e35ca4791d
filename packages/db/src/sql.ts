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
