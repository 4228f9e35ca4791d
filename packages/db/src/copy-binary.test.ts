import type pg from "pg";
import {
  BinaryCopyWriter,
  BOOL_FIELD_BYTES,
  COPY_BINARY_HEADER,
  COPY_BINARY_TRAILER,
  FLOAT8_FIELD_BYTES,
  jsonbFieldBytes,
  ROW_HEADER_BYTES,
  textFieldBytes,
  TIMESTAMPTZ_FIELD_BYTES,
} from "./copy-binary";
import { runCopyScriptOnPool } from "./copy-script";
import { openTestDatabase } from "./testing";

interface Row {
  at: number;
  label: string | null;
  price: number;
  flag: boolean;
  doc: string;
}

/** Encodes rows exactly as the candle and event writes do: sized first, then written. */
function encode(rows: readonly Row[]): Buffer[] {
  const size = rows.reduce(
    (sum, row) =>
      sum + ROW_HEADER_BYTES + TIMESTAMPTZ_FIELD_BYTES + textFieldBytes(row.label === null ? 0 : Buffer.byteLength(row.label)) + FLOAT8_FIELD_BYTES + BOOL_FIELD_BYTES + jsonbFieldBytes(Buffer.byteLength(row.doc)),
    0,
  );
  const out = new BinaryCopyWriter(size);
  for (const row of rows) {
    out.row(5);
    out.timestamptz(row.at);
    out.text(row.label, row.label === null ? 0 : Buffer.byteLength(row.label));
    out.float8(row.price);
    out.bool(row.flag);
    out.jsonb(row.doc, Buffer.byteLength(row.doc));
  }
  return [COPY_BINARY_HEADER, out.finish(), COPY_BINARY_TRAILER];
}

describe("binary COPY rows on the server engine", () => {
  let db: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    db = await openTestDatabase("server");
  });
  afterAll(async () => {
    await db.close();
  });

  it("round-trips times from 1970 to 9999, NULL and non-ASCII text, floats, booleans and jsonb", async () => {
    const rows: Row[] = [
      { at: 0, label: null, price: -0.5, flag: false, doc: "{}" },
      { at: Date.UTC(1999, 11, 31, 23, 59, 59, 999), label: "BTC/USDT", price: 1e-8, flag: true, doc: '{"a":[1,2.5,"x"]}' },
      { at: Date.UTC(2026, 10, 25, 17, 15), label: "ÅÄÖ 😀 × −", price: 1.7976931348623157e308, flag: true, doc: '{"reason":"price + 2.5×atr"}' },
      { at: Date.UTC(9999, 11, 31), label: "", price: 42, flag: false, doc: "null" },
    ];
    const script = [
      "CREATE TEMP TABLE IF NOT EXISTS typed (at timestamptz(3), label text, price float8, flag bool, doc jsonb) ON COMMIT DROP",
      "COPY typed (at, label, price, flag, doc) FROM STDIN (FORMAT binary)",
      "CREATE TABLE typed_kept AS SELECT (extract(epoch from at) * 1000)::int8 AS at_ms, label, price, flag, doc FROM typed",
    ].join(";\n");
    expect(await runCopyScriptOnPool(db.pool as pg.Pool, script, encode(rows))).toEqual(["CREATE TABLE", "COPY 4", "SELECT 4"]);
    const stored = await db.sql.query<{ at_ms: string; label: string | null; price: number; flag: boolean; doc: unknown }>("SELECT at_ms, label, price, flag, doc FROM typed_kept");
    expect(stored.rows.map((row) => ({ ...row, at_ms: Number(row.at_ms) }))).toEqual(
      rows.map((row) => ({ at_ms: row.at, label: row.label, price: row.price, flag: row.flag, doc: JSON.parse(row.doc) })),
    );
  });

  it("refuses to hand over a buffer whose size was reckoned wrongly", () => {
    const out = new BinaryCopyWriter(ROW_HEADER_BYTES + BOOL_FIELD_BYTES + 1);
    out.row(1);
    out.bool(true);
    expect(() => out.finish()).toThrow("COPY buffer size mismatch: wrote 7 of 8 bytes");
  });
});
