import type { SqlRunner } from "./sql";
import { compareSchemaWithDatabase, parsePrismaSchema, readPrismaSchema, type SchemaProblem } from "./schema-check";
import { DATABASE_KINDS, openTestDatabase } from "./testing";

const SCHEMA = readPrismaSchema();

/** The repository's schema with one exact piece of text replaced (fails loudly if the text moved). */
function tamper(from: string, to: string): string {
  if (!SCHEMA.includes(from)) throw new Error(`schema.prisma no longer contains ${JSON.stringify(from)}`);
  return SCHEMA.replace(from, to);
}

const brief = (problems: SchemaProblem[]) => problems.map((p) => ({ kind: p.kind, severity: p.severity, table: p.table, column: p.column }));

describe("parsePrismaSchema", () => {
  it("reads models with @@map, fields with @map, optional and native types, and enums with @@map", () => {
    const schema = parsePrismaSchema(`
      // a comment with a model Fake { inside }
      model Thing {
        id      Int      @id @default(autoincrement()) // trailing "comment"
        label   String?  @map("the_label") @default("a // not a comment")
        price   Decimal  @db.Decimal(20, 8)
        tags    String[]
        kind    Kind
        owner   Owner    @relation(fields: [ownerId], references: [id])
        ownerId Int      @map("owner_id")
        legacy  String   @ignore
        @@index([label])
        @@map("things")
      }
      model Owner {
        id Int @id
      }
      enum Kind {
        A
        B @map("bee")
        @@map("thing_kind")
      }
    `);
    expect(schema.enums).toEqual([{ name: "Kind", dbName: "thing_kind", values: ["A", "bee"] }]);
    const thing = schema.models.find((m) => m.name === "Thing");
    expect(thing?.table).toBe("things");
    expect(thing?.fields.map((f) => [f.name, f.column, f.type, f.optional, f.list])).toEqual([
      ["id", "id", "Int", false, false],
      ["label", "the_label", "String", true, false],
      ["price", "price", "Decimal", false, false],
      ["tags", "tags", "String", false, true],
      ["kind", "kind", "Kind", false, false],
      ["owner", "owner", "Owner", false, false],
      ["ownerId", "owner_id", "Int", false, false],
    ]);
    expect(thing?.fields.find((f) => f.name === "price")?.nativeType).toEqual({ name: "Decimal", args: [20, 8] });
  });

  it("finds the eight models of the repository's schema", () => {
    expect(parsePrismaSchema(SCHEMA).models.map((m) => m.table).sort()).toEqual(["account_state", "candle_gaps", "candles", "decision_traces", "orders", "positions", "series_audit", "system_events", "trades"]);
  });
});

describe.each(DATABASE_KINDS)("compareSchemaWithDatabase on the %s engine", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await db.close();
  });

  /** Runs DDL and the comparison inside a transaction that is rolled back, so tests do not disturb each other. */
  async function compareAfter(ddl: string, schemaText = SCHEMA) {
    return db.session(async (connection: SqlRunner) => {
      await connection.exec("BEGIN");
      try {
        await connection.exec(ddl);
        return await compareSchemaWithDatabase({ sql: connection }, schemaText);
      } finally {
        await connection.exec("ROLLBACK");
      }
    });
  }

  it("finds no problems on a freshly migrated database: every model field has a compatible column", async () => {
    const result = await compareSchemaWithDatabase(db);
    expect(result.problems).toEqual([]);
    expect(result.tables).toBe(9);
    expect(result.columns).toBe(99);
  });

  it("reports a dropped column as missing, naming the table, column and model field", async () => {
    const result = await compareAfter(`ALTER TABLE positions DROP COLUMN stop_loss`);
    expect(brief(result.problems)).toEqual([{ kind: "missing-column", severity: "error", table: "positions", column: "stop_loss" }]);
    expect(result.problems[0]?.message).toBe("column positions.stop_loss (Position.stopLoss) does not exist");
  });

  it("reports the order ledger's columns like the others: a dropped orders.fee_base and positions.entry_fee", async () => {
    const result = await compareAfter(`ALTER TABLE orders DROP COLUMN fee_base; ALTER TABLE positions DROP COLUMN entry_fee`);
    expect(result.problems.map((p) => p.message).sort()).toEqual([
      "column orders.fee_base (Order.feeBase) does not exist",
      "column positions.entry_fee (Position.entryFee) does not exist",
    ]);
  });

  it("reports a missing table once, not once per column", async () => {
    const result = await compareAfter(`DROP TABLE trades`);
    expect(brief(result.problems)).toEqual([{ kind: "missing-table", severity: "error", table: "trades", column: undefined }]);
    expect(result.problems[0]?.message).toBe('table "trades" (model Trade) does not exist');
  });

  it("reports a column whose type or precision changed", async () => {
    const result = await compareAfter(`ALTER TABLE trades ALTER COLUMN fees TYPE numeric(10,2); ALTER TABLE candles ALTER COLUMN volume TYPE real`);
    expect(result.problems.map((p) => p.message).sort()).toEqual([
      "column candles.volume is real, but Candle.volume (Float) needs double precision",
      "column trades.fees is numeric(10,2), but Trade.fees (Decimal) needs numeric(38,18)",
    ]);
  });

  it("reports nullability that differs from the model", async () => {
    const result = await compareAfter(`ALTER TABLE positions ALTER COLUMN take_profit SET NOT NULL; ALTER TABLE candles ALTER COLUMN close DROP NOT NULL`);
    expect(result.problems.map((p) => p.message).sort()).toEqual([
      "column candles.close allows NULL, but Candle.close is required (reading a null will fail)",
      "column positions.take_profit is NOT NULL, but Position.takeProfit is optional (writing null will fail)",
    ]);
  });

  it("warns about an extra nullable column and fails on an extra NOT NULL column without a default", async () => {
    const result = await compareAfter(`ALTER TABLE candles ADD COLUMN source text; ALTER TABLE account_state ADD COLUMN broker text NOT NULL`);
    expect(brief(result.problems)).toEqual([
      { kind: "extra-column", severity: "warning", table: "candles", column: "source" },
      { kind: "extra-column", severity: "error", table: "account_state", column: "broker" },
    ]);
  });

  it("reports what a tampered schema text expects and the database lacks", async () => {
    let text = tamper("  stopLoss     Decimal?     @map(\"stop_loss\")", "  stopLoss     Decimal      @map(\"stop_loss\")");
    text = text.replace("  metadata     Json         @default(\"{}\")", "  metadata     Json         @default(\"{}\")\n  note         String");
    text = text.replace("  MANUAL\n", "  MANUAL\n  LIQUIDATED\n");
    text = text.replace('@@map("account_state")', '@@map("balances")');
    text = text.replace("  volume    Float\n", "  volume    Decimal\n");
    const result = await compareSchemaWithDatabase(db, text);
    expect(result.problems.map((p) => p.message).sort()).toEqual([
      "column candles.volume is double precision, but Candle.volume (Decimal) needs numeric",
      "column positions.note (Position.note) does not exist",
      "column positions.stop_loss allows NULL, but Position.stopLoss is required (reading a null will fail)",
      'enum type "exit_reason" lacks value(s) LIQUIDATED of enum ExitReason',
      'table "balances" (model AccountState) does not exist',
    ]);
  });

  it("reports a missing enum type and an enum column of another type", async () => {
    const text = tamper('@@map("exit_reason")', '@@map("exit_cause")');
    const result = await compareSchemaWithDatabase(db, text);
    expect(result.problems.map((p) => p.message).sort()).toEqual([
      "column orders.exit_reason is enum exit_reason, but Order.exitReason (ExitReason) needs enum exit_cause",
      "column trades.exit_reason is enum exit_reason, but Trade.exitReason (ExitReason) needs enum exit_cause",
      'enum type "exit_cause" (enum ExitReason) does not exist',
    ]);
  });
});
