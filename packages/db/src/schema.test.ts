import fs from "node:fs";
import path from "node:path";
import type { SqlRunner } from "./sql";
import { DATABASE_KINDS, openTestDatabase } from "./testing";

/**
 * "Every schema.prisma model field has a matching column of a compatible type",
 * checked with a parser of its own (independent of src/schema-check.ts, which
 * verify uses) against information_schema of the migrated database.
 */

const SCHEMA_PATH = path.resolve(__dirname, "../../../prisma/schema.prisma");
const SCHEMA = fs.readFileSync(SCHEMA_PATH, "utf8");

interface Field {
  name: string;
  column: string;
  type: string;
  optional: boolean;
  list: boolean;
  /** @db.X(args) */
  native: { name: string; args: number[] } | undefined;
}
interface Model {
  name: string;
  table: string;
  fields: Field[];
}
interface Schema {
  models: Model[];
  /** enum name → database type name */
  enums: Map<string, string>;
}

const mapped = (text: string, attribute: "@map" | "@@map") => new RegExp(`${attribute}\\("([^"]+)"\\)`).exec(text)?.[1];

/** Drops `//` comments, leaving `//` inside string literals alone. */
function withoutComment(line: string): string {
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    if (line[i] === '"' && line[i - 1] !== "\\") quoted = !quoted;
    if (!quoted && line.startsWith("//", i)) return line.slice(0, i);
  }
  return line;
}

function parseSchema(text: string): Schema {
  const blocks: { kind: string; name: string; lines: string[] }[] = [];
  let current: { kind: string; name: string; lines: string[] } | undefined;
  for (const raw of text.split("\n")) {
    const line = withoutComment(raw).trim();
    if (!line) continue;
    const open = /^(model|enum|generator|datasource|view|type)\s+(\w+)\s*\{$/.exec(line);
    if (open?.[1] && open[2]) current = { kind: open[1], name: open[2], lines: [] };
    else if (line === "}" && current) {
      blocks.push(current);
      current = undefined;
    } else current?.lines.push(line);
  }
  const enums = new Map(blocks.filter((b) => b.kind === "enum").map((b) => [b.name, b.lines.map((l) => mapped(l, "@@map")).find((m) => m !== undefined) ?? b.name]));
  const modelNames = new Set(blocks.filter((b) => b.kind === "model").map((b) => b.name));
  const models = blocks
    .filter((b) => b.kind === "model")
    .map((b) => {
      const fields: Field[] = [];
      for (const line of b.lines) {
        const match = /^(\w+)\s+(\w+)(\[\])?(\?)?(.*)$/.exec(line);
        if (!match?.[1] || !match[2] || line.startsWith("@@")) continue;
        const attributes = match[5] ?? "";
        // Relation fields have no column of their own.
        if (modelNames.has(match[2]) || attributes.includes("@relation")) continue;
        const native = /@db\.(\w+)(?:\(([^)]*)\))?/.exec(attributes);
        fields.push({
          name: match[1],
          column: mapped(attributes, "@map") ?? match[1],
          type: match[2],
          list: match[3] !== undefined,
          optional: match[4] !== undefined,
          native: native?.[1] ? { name: native[1], args: (native[2] ?? "").split(",").filter((a) => a.trim() !== "").map(Number) } : undefined,
        });
      }
      return { name: b.name, table: b.lines.map((l) => mapped(l, "@@map")).find((m) => m !== undefined) ?? b.name, fields };
    });
  return { models, enums };
}

interface Column {
  table_name: string;
  column_name: string;
  data_type: string;
  udt_name: string;
  is_nullable: "YES" | "NO";
  numeric_precision: number | null;
  numeric_scale: number | null;
  datetime_precision: number | null;
}

const SCALARS: Record<string, string> = {
  String: "text",
  Int: "integer",
  BigInt: "bigint",
  Float: "double precision",
  Decimal: "numeric",
  Boolean: "boolean",
  DateTime: "timestamp with time zone",
  Json: "jsonb",
};

/** Why `column` cannot hold `field`, or undefined when it can. */
function typeProblem(field: Field, column: Column, enums: Map<string, string>): string | undefined {
  const enumType = enums.get(field.type);
  if (field.list) return `is a list (${field.type}[]), which this check does not expect`;
  if (enumType !== undefined) {
    return column.data_type === "USER-DEFINED" && column.udt_name === enumType ? undefined : `is ${column.data_type} ${column.udt_name}, expected enum ${enumType}`;
  }
  const expected = SCALARS[field.type];
  if (expected === undefined) return `has unknown Prisma type ${field.type}`;
  if (column.data_type !== expected) return `is ${column.data_type}, expected ${expected}`;
  const [precision, scale] = field.native?.args ?? [];
  if (field.native?.name === "Decimal" && (column.numeric_precision !== precision || column.numeric_scale !== (scale ?? 0))) {
    return `is numeric(${column.numeric_precision},${column.numeric_scale}), expected numeric(${precision},${scale ?? 0})`;
  }
  if (field.native?.name === "Timestamptz" && precision !== undefined && column.datetime_precision !== precision) {
    return `is timestamptz(${column.datetime_precision}), expected timestamptz(${precision})`;
  }
  return undefined;
}

/** Every difference between the schema text and the database's columns, both ways. */
function drift(schema: Schema, columns: readonly Column[]): string[] {
  const problems: string[] = [];
  const modelTables = new Set(schema.models.map((m) => m.table));
  for (const model of schema.models) {
    const tableColumns = columns.filter((c) => c.table_name === model.table);
    if (tableColumns.length === 0) {
      problems.push(`table ${model.table} of model ${model.name} does not exist`);
      continue;
    }
    for (const field of model.fields) {
      const column = tableColumns.find((c) => c.column_name === field.column);
      if (!column) {
        problems.push(`${model.table}.${field.column} (${model.name}.${field.name}) does not exist`);
        continue;
      }
      const problem = typeProblem(field, column, schema.enums);
      if (problem) problems.push(`${model.table}.${field.column} ${problem}`);
      if ((column.is_nullable === "YES") !== field.optional) {
        problems.push(`${model.table}.${field.column} is ${column.is_nullable === "YES" ? "nullable" : "NOT NULL"} but ${model.name}.${field.name} is ${field.optional ? "optional" : "required"}`);
      }
    }
    for (const column of tableColumns) {
      if (!model.fields.some((f) => f.column === column.column_name)) problems.push(`${model.table}.${column.column_name} has no field in model ${model.name}`);
    }
  }
  for (const table of new Set(columns.map((c) => c.table_name))) {
    if (!modelTables.has(table)) problems.push(`table ${table} has no model`);
  }
  return problems.sort();
}

async function databaseColumns(sql: SqlRunner): Promise<Column[]> {
  const result = await sql.query<Column>(
    `SELECT c.table_name, c.column_name, c.data_type, c.udt_name, c.is_nullable, c.numeric_precision, c.numeric_scale, c.datetime_precision
     FROM information_schema.columns c
     JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' AND c.table_name <> '_prisma_migrations'
     ORDER BY c.table_name, c.ordinal_position`,
  );
  const number = (value: number | string | null) => (value === null ? null : Number(value));
  return result.rows.map((c) => ({ ...c, numeric_precision: number(c.numeric_precision), numeric_scale: number(c.numeric_scale), datetime_precision: number(c.datetime_precision) }));
}

/** The schema text with one exact piece replaced; throws if the piece is gone, so a tamper never silently does nothing. */
function tampered(from: string | RegExp, to: string): Schema {
  const text = SCHEMA.replace(from, to);
  if (text === SCHEMA) throw new Error(`schema.prisma no longer contains ${String(from)}`);
  return parseSchema(text);
}

describe("the test's schema.prisma parser", () => {
  it("reads the nine models with their tables, mapped columns, optional fields, native types and enums", () => {
    const schema = parseSchema(SCHEMA);
    expect(schema.models.map((m) => `${m.name}→${m.table}`).sort()).toEqual([
      "AccountState→account_state",
      "CandleGap→candle_gaps",
      "Candle→candles",
      "DecisionTrace→decision_traces",
      "Order→orders",
      "Position→positions",
      "SeriesAudit→series_audit",
      "SystemEvent→system_events",
      "Trade→trades",
    ]);
    expect([...schema.enums]).toEqual([
      ["PositionSide", "position_side"],
      ["ExitReason", "exit_reason"],
      ["OrderStatus", "order_status"],
      ["OrderSide", "order_side"],
      ["OrderPurpose", "order_purpose"],
      ["TradingMode", "trading_mode"],
    ]);
    const position = schema.models.find((m) => m.name === "Position");
    expect(position?.fields.find((f) => f.name === "takeProfit")).toEqual({
      name: "takeProfit",
      column: "take_profit",
      type: "Decimal",
      optional: true,
      list: false,
      native: { name: "Decimal", args: [38, 18] },
    });
    expect(position?.fields.map((f) => f.name)).toEqual(["id", "exchange", "symbol", "side", "quantity", "entryPrice", "takeProfit", "stopLoss", "entryOrderId", "entryFee", "openedAt", "updatedAt", "metadata"]);
  });

  it("skips relation fields, which have no column", () => {
    const schema = parseSchema(`
      model Owner {
        id    Int    @id
        pets  Pet[]
      }
      model Pet {
        id      Int   @id
        owner   Owner @relation(fields: [ownerId], references: [id])
        ownerId Int   @map("owner_id")
        @@map("pets")
      }`);
    expect(schema.models.map((m) => [m.table, m.fields.map((f) => f.column)])).toEqual([
      ["Owner", ["id"]],
      ["pets", ["id", "owner_id"]],
    ]);
  });
});

describe.each(DATABASE_KINDS)("schema.prisma against the migrated %s database", (kind) => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  let columns: Column[];
  beforeAll(async () => {
    db = await openTestDatabase(kind);
    columns = await databaseColumns(db.sql);
  });
  afterAll(async () => {
    await db.close();
  });

  it("has a column of a compatible type and nullability for every model field, and no column or table without one", () => {
    const schema = parseSchema(SCHEMA);
    expect(drift(schema, columns)).toEqual([]);
    // Every column was matched by a field: the comparison was not vacuous.
    expect(schema.models.reduce((n, m) => n + m.fields.length, 0)).toBe(columns.length);
  });

  it("would fail if a field were added to the schema without a migration", () => {
    const schema = tampered('  metadata     Json         @default("{}")\n', '  metadata     Json         @default("{}")\n  trailing     Decimal?     @map("trailing_stop") @db.Decimal(38, 18)\n');
    expect(drift(schema, columns)).toEqual(["positions.trailing_stop (Position.trailing) does not exist"]);
  });

  it("would fail if a column were added by a migration without a field", () => {
    const schema = tampered(/\n {2}level +String +@default\("info"\)/g, "");
    expect(drift(schema, columns)).toEqual(["decision_traces.level has no field in model DecisionTrace", "system_events.level has no field in model SystemEvent"]);
  });

  it("would fail if a field's type, precision, nullability or enum changed without a migration", () => {
    expect(drift(tampered("  volume    Float\n", "  volume    Decimal\n"), columns)).toEqual(["candles.volume is double precision, expected numeric"]);
    expect(drift(tampered(/free +Decimal +@db\.Decimal\(38, 18\)/, "free Decimal @db.Decimal(20, 8)"), columns)).toEqual([
      "account_state.free is numeric(38,18), expected numeric(20,8)",
    ]);
    expect(drift(tampered(/stopLoss +Decimal\?/, "stopLoss Decimal"), columns)).toEqual(["positions.stop_loss is nullable but Position.stopLoss is required"]);
    expect(drift(tampered(/symbol +String\?/, "symbol String"), columns)).toEqual(["system_events.symbol is nullable but SystemEvent.symbol is required"]);
    expect(drift(tampered('@@map("exit_reason")', '@@map("exit_cause")'), columns)).toEqual([
      "orders.exit_reason is USER-DEFINED exit_reason, expected enum exit_cause",
      "trades.exit_reason is USER-DEFINED exit_reason, expected enum exit_cause",
    ]);
    expect(drift(tampered(/filledAmount +Decimal +@default\(0\) @map\("filled_amount"\) @db\.Decimal\(38, 18\)/, 'filledAmount Float @default(0) @map("filled_amount")'), columns)).toEqual([
      "orders.filled_amount is numeric, expected double precision",
    ]);
    expect(drift(tampered(/openTime +DateTime/, "openTime  String"), columns)).toEqual(["candles.open_time is timestamp with time zone, expected text"]);
  });

  it("would fail if a model pointed at a table that does not exist", () => {
    expect(drift(tampered('@@map("account_state")', '@@map("balances")'), columns)).toEqual(["table account_state has no model", "table balances of model AccountState does not exist"]);
  });
});
