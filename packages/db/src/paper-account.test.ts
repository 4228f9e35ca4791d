import { openPaperAccount } from "./paper-account";
import { useTestDatabase, type SuiteDatabase } from "./test-database-hooks";
import { captureLogger, DATABASE_KINDS } from "./testing";

describe.each(DATABASE_KINDS)("the paper account record on the %s engine", (kind) => {
  const logger = captureLogger();
  let db: SuiteDatabase;
  useTestDatabase(kind, { logger, tables: "system_events", opened: (opened) => (db = opened) });

  it("is opened once with its starting balance and read back unchanged whatever is asked later", async () => {
    expect(await openPaperAccount(db, { exchange: "sim", currency: "USDT", startingBalance: 10000.25 })).toEqual({ currency: "USDT", startingBalance: 10000.25 });
    expect(await openPaperAccount(db, { exchange: "sim", currency: "EUR", startingBalance: 500 })).toEqual({ currency: "USDT", startingBalance: 10000.25 });
    expect(await openPaperAccount(db, { exchange: "binance", currency: "BTC", startingBalance: 0.5 })).toEqual({ currency: "BTC", startingBalance: 0.5 });
  });
});
