/**
 * PostgreSQL's binary COPY format (see COPY, "Binary Format"): a header, then
 * per row a 16-bit field count and every field as a 32-bit byte length (-1 for
 * NULL) followed by the value in its type's binary wire format, then a trailer.
 * Binary spares both sides printing and parsing numbers and escaping text.
 */

const SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");
/** The signature, flags 0 and no header extension. */
export const COPY_BINARY_HEADER = Buffer.concat([SIGNATURE, Buffer.alloc(8)]);
/** A field count of -1 ends the data. */
export const COPY_BINARY_TRAILER = Buffer.from([0xff, 0xff]);

/** Bytes a row takes before its fields: the field count. */
export const ROW_HEADER_BYTES = 2;
/** Bytes of a fixed-size field, its length word included. */
export const FLOAT8_FIELD_BYTES = 4 + 8;
export const TIMESTAMPTZ_FIELD_BYTES = 4 + 8;
export const BOOL_FIELD_BYTES = 4 + 1;
export const INT4_FIELD_BYTES = 4 + 4;
/** Bytes of a text field holding `byteLength` bytes of UTF-8, or of a NULL. */
export const textFieldBytes = (byteLength: number): number => 4 + byteLength;
/** Bytes of a jsonb field holding `byteLength` bytes of JSON text: a format version byte precedes the text. */
export const jsonbFieldBytes = (byteLength: number): number => 4 + 1 + byteLength;

/** timestamptz travels as microseconds since 2000-01-01 UTC. */
export const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const TWO_32 = 2 ** 32;
const JSONB_VERSION = 1;

/**
 * Writes rows into a buffer sized beforehand from the *_BYTES figures, so a
 * chunk of rows is one allocation. `finish` checks the size was right.
 *
 * Numbers go through a DataView (big-endian by default, as the format wants):
 * V8 compiles its setters to single stores, where Buffer's write*BE methods
 * check their arguments and shuffle bytes in JavaScript on every call (encoding
 * takes about half the time).
 */
export class BinaryCopyWriter {
  private at = 0;
  private readonly buffer: Buffer;
  private readonly view: DataView;

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, size);
  }

  row(fields: number): void {
    this.view.setInt16(this.at, fields);
    this.at += 2;
  }

  /** A text field from bytes already encoded (a batch repeats a few values many times). */
  textBytes(bytes: Buffer): void {
    this.view.setInt32(this.at, bytes.length);
    this.buffer.set(bytes, this.at + 4);
    this.at += 4 + bytes.length;
  }

  /** A text field of `byteLength` UTF-8 bytes (Buffer.byteLength of it), or NULL. */
  text(value: string | null, byteLength: number): void {
    if (value === null) {
      this.view.setInt32(this.at, -1);
      this.at += 4;
      return;
    }
    this.view.setInt32(this.at, byteLength);
    this.at += 4 + this.buffer.write(value, this.at + 4, byteLength, "utf8");
  }

  /** A jsonb field from JSON text of `byteLength` UTF-8 bytes; the server parses it as jsonb input. */
  jsonb(json: string, byteLength: number): void {
    this.view.setInt32(this.at, 1 + byteLength);
    this.view.setUint8(this.at + 4, JSONB_VERSION);
    this.at += 5 + this.buffer.write(json, this.at + 5, byteLength, "utf8");
  }

  float8(value: number): void {
    this.view.setInt32(this.at, 8);
    this.view.setFloat64(this.at + 4, value);
    this.at += 12;
  }

  /**
   * Epoch milliseconds, sent as a 64-bit count of microseconds in two 32-bit
   * halves. Exact until 2255 (2^53 µs); later, off by a few microseconds,
   * which the tables' millisecond columns round away.
   */
  timestamptz(epochMs: number): void {
    const micros = (epochMs - PG_EPOCH_MS) * 1000;
    const high = Math.floor(micros / TWO_32);
    this.view.setInt32(this.at, 8);
    this.view.setInt32(this.at + 4, high);
    this.view.setUint32(this.at + 8, micros - high * TWO_32);
    this.at += 12;
  }

  int4(value: number): void {
    this.view.setInt32(this.at, 4);
    this.view.setInt32(this.at + 4, value);
    this.at += 8;
  }

  bool(value: boolean): void {
    this.view.setInt32(this.at, 1);
    this.view.setUint8(this.at + 4, value ? 1 : 0);
    this.at += 5;
  }

  /** The filled buffer; a size that does not match what was written is a bug in the caller's sizing. */
  finish(): Buffer {
    if (this.at !== this.buffer.length) throw new Error(`COPY buffer size mismatch: wrote ${this.at} of ${this.buffer.length} bytes`);
    return this.buffer;
  }
}

/** A column written by binaryCopyChunks: its wire type and how to read it from a row. */
export type CopyColumn<Row> =
  | { type: "text"; of: (row: Row) => string | null }
  | { type: "jsonb"; of: (row: Row) => string }
  | { type: "timestamptz"; of: (row: Row) => number };

/**
 * The COPY data of `rows` in `columns`' order: the header, one buffer per `chunkRows` rows (each
 * one allocation, sized from its texts' UTF-8 lengths, measured once), the trailer. Made lazily,
 * so runCopyScript holds one chunk at a time.
 */
export function* binaryCopyChunks<Row>(rows: readonly Row[], columns: readonly CopyColumn<Row>[], chunkRows: number): Generator<Buffer> {
  yield COPY_BINARY_HEADER;
  for (let start = 0; start < rows.length; start += chunkRows) {
    const chunk = rows.slice(start, start + chunkRows);
    const textBytes: number[] = [];
    let size = 0;
    for (const row of chunk) {
      size += ROW_HEADER_BYTES;
      for (const column of columns) {
        if (column.type === "timestamptz") {
          size += TIMESTAMPTZ_FIELD_BYTES;
          continue;
        }
        const value = column.of(row);
        const bytes = value === null ? 0 : Buffer.byteLength(value);
        textBytes.push(bytes);
        size += column.type === "jsonb" ? jsonbFieldBytes(bytes) : textFieldBytes(bytes);
      }
    }
    const out = new BinaryCopyWriter(size);
    let next = 0;
    for (const row of chunk) {
      out.row(columns.length);
      for (const column of columns) {
        if (column.type === "timestamptz") out.timestamptz(column.of(row));
        else if (column.type === "jsonb") out.jsonb(column.of(row), textBytes[next++] ?? 0);
        else out.text(column.of(row), textBytes[next++] ?? 0);
      }
    }
    yield out.finish();
  }
  yield COPY_BINARY_TRAILER;
}
