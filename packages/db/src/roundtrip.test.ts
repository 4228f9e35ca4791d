import type { Database } from "./connect";
import { recordEvent } from "./events";
import { ROUNDTRIP_EXCHANGE, roundTrip } from "./roundtrip";
import { DATABASE_KINDS, openTestDatabase } from "./testing";

async function rowCounts(db: Pick<Database, "sql">): Promise<Record<string, number>> {
  const result = await db.sql.query<{ candles: string; events: string; positions: string; trades: string; orders: string; account: string }>(
    `SELECT (SELECT count(*) FROM candles) AS candles, (SELECT count(*) FROM system_events) AS events, (SELECT count(*) FROM positions) AS positions,
            (SELECT count(*) FROM trades) AS trades, (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM account_state) AS account`,
  );
  return Object.fromEntries(Object.entries(result.rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
}

describe.each(DATABASE_KINDS)("roundTrip on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await db.close();
  });

  it("writes and reads back one row of each kind, then leaves every table as it was", async () => {
    await recordEvent(db, { type: "STARTUP", payload: { real: true } });
    const before = await rowCounts(db);
    const results = await roundTrip(db);
    expect(results).toEqual(["candle", "event", "position", "trade", "order", "account"].map((k) => ({ kind: k, ok: true, problem: undefined })));
    expect(await rowCounts(db)).toEqual(before);
    const leftovers = await db.sql.query(`SELECT 1 FROM candles WHERE exchange = $1 UNION ALL SELECT 1 FROM positions WHERE exchange = $1 UNION ALL SELECT 1 FROM orders WHERE exchange = $1`, [ROUNDTRIP_EXCHANGE]);
    expect(leftovers.rows).toEqual([]);
  });

  it("reports each value that comes back different, naming the field and both values", async () => {
    // A column that rounds: the write succeeds, the value read back is not the one written.
    await db.sql.exec("ALTER TABLE account_state ALTER COLUMN free TYPE numeric(20,2), ALTER COLUMN time TYPE timestamptz(0)");
    try {
      const account = (await roundTrip(db, { nowMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678) })).find((r) => r.kind === "account");
      expect(account?.ok).toBe(false);
      expect(account?.problem).toContain("free: wrote 9876.543210987654321, read 9876.54");
      expect(account?.problem).toContain("time: wrote 2026-01-02T03:04:05.678Z, read 2026-01-02T03:04:06.000Z");
      expect(account?.problem).not.toContain("used:");
    } finally {
      await db.sql.exec("ALTER TABLE account_state ALTER COLUMN free TYPE numeric(38,18), ALTER COLUMN time TYPE timestamptz(3)");
    }
  });

  // Last in the file: it breaks the table for good (the database is dropped afterwards).
  it("reports a broken table with the database's reason and still checks the others", async () => {
    await db.sql.exec("ALTER TABLE trades DROP COLUMN exit_reason");
    const results = await roundTrip(db);
    const byKind = new Map(results.map((r) => [r.kind, r]));
    expect(byKind.get("trade")).toMatchObject({ ok: false, problem: expect.stringMatching(/exit_reason/) });
    for (const other of ["candle", "event", "position", "order", "account"] as const) expect(byKind.get(other)?.ok).toBe(true);
  });
});
