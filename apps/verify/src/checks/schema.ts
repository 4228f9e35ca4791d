import { compareSchemaWithDatabase, readPrismaSchema } from "@candlekeep/db";
import { plural, type Check } from "../check";

/** Check 3: all model tables exist and every schema.prisma field has a compatible column. */
export const schemaCheck: Check = async ({ db, config }) => {
  const schemaText = config.database.schemaPath === undefined ? undefined : readPrismaSchema(config.database.schemaPath);
  const result = await compareSchemaWithDatabase(db, schemaText);
  const errors = result.problems.filter((p) => p.severity === "error");
  const warnings = result.problems.filter((p) => p.severity === "warning");
  const data = { tables: result.tables, columns: result.columns, problems: result.problems };
  const details = [...errors, ...warnings].map((p) => p.message);
  if (errors.length > 0) {
    return { status: "fail", summary: `${plural(errors.length, "difference")} from schema.prisma: ${errors[0]?.message ?? ""}${errors.length > 1 ? " …" : ""}`, details, data };
  }
  if (warnings.length > 0) {
    return { status: "warn", summary: `${result.tables} tables match schema.prisma; ${plural(warnings.length, "extra column")} the models do not know`, details, data };
  }
  return { status: "pass", summary: `${result.tables} tables, ${result.columns} columns match schema.prisma`, data };
};
