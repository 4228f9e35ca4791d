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
/** Bytes of a text field holding `byteLength` bytes of UTF-8, or of a NULL. */
export const textFieldBytes = (byteLength: number): number => 4 + byteLength;
/** Bytes of a jsonb field holding `byteLength` bytes of JSON text: a format version byte precedes the text. */
export const jsonbFieldBytes = (byteLength: number): number => 4 + 1 + byteLength;

/** timestamptz travels as microseconds since 2000-01-01 UTC. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const TWO_32 = 2 ** 32;
const JSONB_VERSION = 1;

/**
 * Writes rows into a buffer sized beforehand from the *_BYTES figures, so a
 * chunk of rows is one allocation. `finish` checks the size was right.
 */
export class BinaryCopyWriter {
  private at = 0;
  private readonly buffer: Buffer;

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  row(fields: number): void {
    this.at = this.buffer.writeInt16BE(fields, this.at);
  }

  /** A text field from bytes already encoded (a batch repeats a few values many times). */
  textBytes(bytes: Buffer): void {
    this.at = this.buffer.writeInt32BE(bytes.length, this.at);
    this.at += bytes.copy(this.buffer, this.at);
  }

  /** A text field of `byteLength` UTF-8 bytes (Buffer.byteLength of it), or NULL. */
  text(value: string | null, byteLength: number): void {
    if (value === null) {
      this.at = this.buffer.writeInt32BE(-1, this.at);
      return;
    }
    this.at = this.buffer.writeInt32BE(byteLength, this.at);
    this.at += this.buffer.write(value, this.at, byteLength, "utf8");
  }

  /** A jsonb field from JSON text of `byteLength` UTF-8 bytes; the server parses it as jsonb input. */
  jsonb(json: string, byteLength: number): void {
    this.at = this.buffer.writeInt32BE(1 + byteLength, this.at);
    this.at = this.buffer.writeUInt8(JSONB_VERSION, this.at);
    this.at += this.buffer.write(json, this.at, byteLength, "utf8");
  }

  float8(value: number): void {
    this.at = this.buffer.writeInt32BE(8, this.at);
    this.at = this.buffer.writeDoubleBE(value, this.at);
  }

  /**
   * Epoch milliseconds, sent as a 64-bit count of microseconds in two 32-bit
   * halves. Exact until 2255 (2^53 µs); later, off by a few microseconds,
   * which the tables' millisecond columns round away.
   */
  timestamptz(epochMs: number): void {
    const micros = (epochMs - PG_EPOCH_MS) * 1000;
    const high = Math.floor(micros / TWO_32);
    this.at = this.buffer.writeInt32BE(8, this.at);
    this.at = this.buffer.writeInt32BE(high, this.at);
    this.at = this.buffer.writeUInt32BE(micros - high * TWO_32, this.at);
  }

  bool(value: boolean): void {
    this.at = this.buffer.writeInt32BE(1, this.at);
    this.at = this.buffer.writeUInt8(value ? 1 : 0, this.at);
  }

  /** The filled buffer; a size that does not match what was written is a bug in the caller's sizing. */
  finish(): Buffer {
    if (this.at !== this.buffer.length) throw new Error(`COPY buffer size mismatch: wrote ${this.at} of ${this.buffer.length} bytes`);
    return this.buffer;
  }
}
