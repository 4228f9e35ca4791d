import fs from "node:fs";
import path from "node:path";
import type { Database } from "./connect";
import { enumTypes, tableColumns, type ColumnInfo } from "./inspect";

/**
 * Compares prisma/schema.prisma with the live database: every field of every
 * model must have a column of a compatible type and nullability. The migrations
 * are hand-written SQL (prisma migrate cannot run offline), so this is what
 * proves at run time that they and the schema the client was generated from agree.
 */

export const DEFAULT_SCHEMA_PATH = path.resolve(__dirname, "../../../prisma/schema.prisma");

export interface NativeType {
  /** The attribute after `@db.`, e.g. "Decimal", "Timestamptz", "VarChar". */
  name: string;
  args: number[];
}

export interface PrismaField {
  name: string;
  /** Column name: @map(...) or the field name. */
  column: string;
  /** Scalar, enum or model name, e.g. "Decimal", "PositionSide". */
  type: string;
  optional: boolean;
  list: boolean;
  nativeType: NativeType | undefined;
}

export interface PrismaModel {
  name: string;
  /** Table name: @@map(...) or the model name. */
  table: string;
  fields: PrismaField[];
}

export interface PrismaEnum {
  name: string;
  /** Database type name: @@map(...) or the enum name. */
  dbName: string;
  /** Database labels (@map(...) or the value name). */
  values: string[];
}

export interface PrismaSchema {
  models: PrismaModel[];
  enums: PrismaEnum[];
}

/** Removes `//` comments (including `///` doc comments) that are not inside a string. */
function stripComment(line: string): string {
  let inString = false;
  for (let i = 0; i < line.length; i += 1) {
    const ch = line[i];
    if (ch === "\\" && inString) i += 1;
    else if (ch === '"') inString = !inString;
    else if (!inString && ch === "/" && line[i + 1] === "/") return line.slice(0, i);
  }
  return line;
}

const mapArgument = (text: string, attribute: "@map" | "@@map") => new RegExp(`${attribute}\\(\\s*(?:name\\s*:\\s*)?"([^"]+)"`).exec(text)?.[1];

function parseNativeType(attributes: string): NativeType | undefined {
  const match = /@db\.(\w+)(?:\(([^)]*)\))?/.exec(attributes);
  if (!match?.[1]) return undefined;
  const args = (match[2] ?? "")
    .split(",")
    .map((arg) => arg.trim())
    .filter((arg) => arg !== "")
    .map(Number);
  return { name: match[1], args };
}

const FIELD = /^(\w+)\s+(\w+)(\[\])?(\?)?(?:\s+(.*))?$/;
const UNSUPPORTED_FIELD = /^(\w+)\s+Unsupported\(/;

/**
 * A small parser for what schema.prisma uses: models, enums, @@map, @map,
 * optional and list types, @db.* native types and @ignore. Relation fields are
 * recognised later (their type names a model) because they have no column.
 */
export function parsePrismaSchema(text: string): PrismaSchema {
  const models: PrismaModel[] = [];
  const enums: PrismaEnum[] = [];
  let block: { kind: "model" | "enum" | "other"; name: string; lines: string[]; ignored: boolean } | undefined;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = stripComment(rawLine).trim();
    if (line === "") continue;
    if (block === undefined) {
      const open = /^(\w+)\s+(\w+)\s*\{$/.exec(line);
      if (open?.[1] && open[2]) block = { kind: open[1] === "model" || open[1] === "enum" ? open[1] : "other", name: open[2], lines: [], ignored: false };
      continue;
    }
    if (line !== "}") {
      block.lines.push(line);
      continue;
    }
    const { kind, name, lines } = block;
    block = undefined;
    if (kind === "model" && !lines.some((l) => l.startsWith("@@ignore"))) {
      const table = lines.filter((l) => l.startsWith("@@map")).map((l) => mapArgument(l, "@@map"))[0] ?? name;
      const fields: PrismaField[] = [];
      for (const l of lines) {
        if (l.startsWith("@@") || UNSUPPORTED_FIELD.test(l)) continue; // Unsupported(...) types cannot be compared
        const field = FIELD.exec(l);
        if (!field?.[1] || !field[2]) continue;
        const attributes = field[5] ?? "";
        if (/(^|\s)@ignore\b/.test(attributes)) continue;
        fields.push({
          name: field[1],
          column: mapArgument(attributes, "@map") ?? field[1],
          type: field[2],
          list: field[3] !== undefined,
          optional: field[4] !== undefined,
          nativeType: parseNativeType(attributes),
        });
      }
      models.push({ name, table, fields });
    } else if (kind === "enum") {
      const dbName = lines.filter((l) => l.startsWith("@@map")).map((l) => mapArgument(l, "@@map"))[0] ?? name;
      const values = lines.filter((l) => !l.startsWith("@@")).map((l) => mapArgument(l, "@map") ?? l.split(/\s+/)[0] ?? l);
      enums.push({ name, dbName, values });
    }
  }
  return { models, enums };
}

/** What a field needs from its column. */
interface ExpectedType {
  /** Accepted information_schema data_type values. */
  dataTypes: string[];
  /** For enums and arrays: the udt_name the column must have. */
  udtName?: string;
  /** For @db.Decimal(p, s): the precision and scale the column must have. */
  precision?: { precision: number; scale: number };
  /** How to name it in a message, e.g. "numeric(38,18)". */
  label: string;
}

const SCALAR_TYPES: Readonly<Record<string, { dataTypes: string[]; udt: string }>> = {
  String: { dataTypes: ["text"], udt: "text" },
  Int: { dataTypes: ["integer"], udt: "int4" },
  BigInt: { dataTypes: ["bigint"], udt: "int8" },
  Float: { dataTypes: ["double precision"], udt: "float8" },
  Decimal: { dataTypes: ["numeric"], udt: "numeric" },
  Boolean: { dataTypes: ["boolean"], udt: "bool" },
  // Prisma's own default is timestamp(3) without time zone; both hold a JS Date
  // exactly, so either is compatible unless @db.Timestamptz/@db.Timestamp says which.
  DateTime: { dataTypes: ["timestamp with time zone", "timestamp without time zone"], udt: "timestamptz" },
  Json: { dataTypes: ["jsonb"], udt: "jsonb" },
  Bytes: { dataTypes: ["bytea"], udt: "bytea" },
};

const NATIVE_TYPES: Readonly<Record<string, { dataType: string; udt: string }>> = {
  Text: { dataType: "text", udt: "text" },
  VarChar: { dataType: "character varying", udt: "varchar" },
  Char: { dataType: "character", udt: "bpchar" },
  Uuid: { dataType: "uuid", udt: "uuid" },
  SmallInt: { dataType: "smallint", udt: "int2" },
  Integer: { dataType: "integer", udt: "int4" },
  BigInt: { dataType: "bigint", udt: "int8" },
  Real: { dataType: "real", udt: "float4" },
  DoublePrecision: { dataType: "double precision", udt: "float8" },
  Decimal: { dataType: "numeric", udt: "numeric" },
  Money: { dataType: "money", udt: "money" },
  Boolean: { dataType: "boolean", udt: "bool" },
  Timestamptz: { dataType: "timestamp with time zone", udt: "timestamptz" },
  Timestamp: { dataType: "timestamp without time zone", udt: "timestamp" },
  Date: { dataType: "date", udt: "date" },
  Time: { dataType: "time without time zone", udt: "time" },
  Timetz: { dataType: "time with time zone", udt: "timetz" },
  Json: { dataType: "json", udt: "json" },
  JsonB: { dataType: "jsonb", udt: "jsonb" },
  ByteA: { dataType: "bytea", udt: "bytea" },
  Inet: { dataType: "inet", udt: "inet" },
  Xml: { dataType: "xml", udt: "xml" },
  Oid: { dataType: "oid", udt: "oid" },
  Bit: { dataType: "bit", udt: "bit" },
  VarBit: { dataType: "bit varying", udt: "varbit" },
};

function expectedType(field: PrismaField, enums: ReadonlyMap<string, PrismaEnum>): ExpectedType | undefined {
  const enumType = enums.get(field.type);
  let base: ExpectedType & { udt: string };
  if (enumType) {
    base = { dataTypes: ["USER-DEFINED"], udtName: enumType.dbName, udt: enumType.dbName, label: `enum ${enumType.dbName}` };
  } else {
    const native = field.nativeType ? NATIVE_TYPES[field.nativeType.name] : undefined;
    const scalar = SCALAR_TYPES[field.type];
    if (native) {
      const [precision, scale] = field.nativeType?.args ?? [];
      const exact = native.dataType === "numeric" && precision !== undefined ? { precision, scale: scale ?? 0 } : undefined;
      base = { dataTypes: [native.dataType], udt: native.udt, label: exact ? `numeric(${exact.precision},${exact.scale})` : native.dataType, ...(exact ? { precision: exact } : {}) };
    } else if (scalar) {
      base = { dataTypes: scalar.dataTypes, udt: scalar.udt, label: scalar.dataTypes.join(" or ") };
    } else {
      return undefined; // unknown native type: nothing reliable to compare against
    }
  }
  if (!field.list) return base;
  return { dataTypes: ["ARRAY"], udtName: `_${base.udt}`, label: `${base.label}[]` };
}

function describeColumnType(column: ColumnInfo): string {
  if (column.dataType === "USER-DEFINED") return `enum ${column.udtName}`;
  if (column.dataType === "ARRAY") return `${column.udtName.replace(/^_/, "")}[]`;
  if (column.dataType === "numeric" && column.numericPrecision !== null) return `numeric(${column.numericPrecision},${column.numericScale ?? 0})`;
  return column.dataType;
}

function typeMatches(expected: ExpectedType, column: ColumnInfo): boolean {
  if (!expected.dataTypes.includes(column.dataType)) return false;
  if (expected.udtName !== undefined && expected.udtName !== column.udtName) return false;
  if (expected.precision && (column.numericPrecision !== expected.precision.precision || column.numericScale !== expected.precision.scale)) return false;
  return true;
}

export type SchemaProblemKind = "missing-table" | "missing-column" | "incompatible-type" | "nullability" | "extra-column" | "missing-enum" | "enum-values";

export interface SchemaProblem {
  kind: SchemaProblemKind;
  /** "error": the Prisma client will fail on it. "warning": harmless for the client (e.g. an extra nullable column). */
  severity: "error" | "warning";
  table: string | undefined;
  column: string | undefined;
  /** One line saying what differs, naming both the table/column and the model/field. */
  message: string;
}

export interface SchemaComparison {
  /** Model tables compared and model fields (columns) compared. */
  tables: number;
  columns: number;
  problems: SchemaProblem[];
}

/** Reads the schema, with a clear error when run outside a full checkout. */
export function readPrismaSchema(schemaPath: string = DEFAULT_SCHEMA_PATH): string {
  if (!fs.existsSync(schemaPath)) throw new Error(`Prisma schema ${schemaPath} does not exist; run from a full checkout of the repository.`);
  return fs.readFileSync(schemaPath, "utf8");
}

/**
 * Every model of `schemaText` (default: the repository's prisma/schema.prisma)
 * against the current schema of the database. Read-only; two catalogue queries.
 */
export async function compareSchemaWithDatabase(db: Pick<Database, "sql">, schemaText: string = readPrismaSchema()): Promise<SchemaComparison> {
  const schema = parsePrismaSchema(schemaText);
  const enumsByName = new Map(schema.enums.map((e) => [e.name, e]));
  const modelNames = new Set(schema.models.map((m) => m.name));
  const columns = await tableColumns(db, schema.models.map((m) => m.table));
  const dbEnums = await enumTypes(db);
  const problems: SchemaProblem[] = [];
  const problem = (kind: SchemaProblemKind, table: string | undefined, column: string | undefined, message: string, severity: SchemaProblem["severity"] = "error") =>
    problems.push({ kind, severity, table, column, message });

  let compared = 0;
  for (const model of schema.models) {
    const tableColumnsByName = new Map(columns.filter((c) => c.table === model.table).map((c) => [c.column, c]));
    if (tableColumnsByName.size === 0) {
      problem("missing-table", model.table, undefined, `table "${model.table}" (model ${model.name}) does not exist`);
      continue;
    }
    // A field whose type is another model is a relation: it has no column of its own.
    const fields = model.fields.filter((f) => !modelNames.has(f.type));
    for (const field of fields) {
      compared += 1;
      const where = `${model.table}.${field.column}`;
      const what = `${model.name}.${field.name}`;
      const column = tableColumnsByName.get(field.column);
      if (!column) {
        problem("missing-column", model.table, field.column, `column ${where} (${what}) does not exist`);
        continue;
      }
      const expected = expectedType(field, enumsByName);
      if (expected && !typeMatches(expected, column)) {
        problem("incompatible-type", model.table, field.column, `column ${where} is ${describeColumnType(column)}, but ${what} (${field.type}${field.list ? "[]" : ""}) needs ${expected.label}`);
      }
      // Scalar lists carry no nullability in Prisma's model, so only plain fields are compared.
      if (!field.list && field.optional !== column.nullable) {
        problem(
          "nullability",
          model.table,
          field.column,
          field.optional ? `column ${where} is NOT NULL, but ${what} is optional (writing null will fail)` : `column ${where} allows NULL, but ${what} is required (reading a null will fail)`,
        );
      }
    }
    const mapped = new Set(fields.map((f) => f.column));
    for (const column of tableColumnsByName.values()) {
      if (mapped.has(column.column)) continue;
      const blocksInserts = !column.nullable && !column.hasDefault;
      problem(
        "extra-column",
        model.table,
        column.column,
        `column ${model.table}.${column.column} is not in model ${model.name}${blocksInserts ? " and is NOT NULL without a default, so inserts through Prisma will fail" : ""}`,
        blocksInserts ? "error" : "warning",
      );
    }
  }

  for (const enumType of schema.enums) {
    const labels = dbEnums.get(enumType.dbName);
    if (!labels) {
      problem("missing-enum", undefined, undefined, `enum type "${enumType.dbName}" (enum ${enumType.name}) does not exist`);
      continue;
    }
    const missing = enumType.values.filter((v) => !labels.includes(v));
    if (missing.length > 0) problem("enum-values", undefined, undefined, `enum type "${enumType.dbName}" lacks value(s) ${missing.join(", ")} of enum ${enumType.name}`);
  }
  return { tables: schema.models.length, columns: compared, problems };
}
