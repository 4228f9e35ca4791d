import { migrationStatus } from "@candlekeep/db";
import { plural, type Check } from "../check";

/** Check 2: every migration on disk is applied, none failed, none changed since it was applied. */
export const migrationsCheck: Check = async ({ db, config }) => {
  const status = await migrationStatus(db, { migrationsDir: config.database.migrationsDir });
  const total = status.applied.length + status.pending.length;
  const problems: string[] = [];
  const details: string[] = [];
  if (status.pending.length > 0) {
    problems.push(`${plural(status.pending.length, "pending migration")}: ${status.pending.join(", ")}`);
    details.push("apply them with `prisma migrate deploy` (the release step), or start the bot once with AUTO_MIGRATE=true");
  }
  if (status.modified.length > 0) {
    problems.push(`changed after being applied (checksum differs): ${status.modified.join(", ")}`);
    details.push("restore the original migration.sql from git and put the change in a new migration");
  }
  if (status.failed.length > 0) {
    problems.push(`started and never finished: ${status.failed.join(", ")}`);
    details.push("repair the database by hand, then `prisma migrate resolve --rolled-back <name>` (or --applied)");
  }
  if (status.unknown.length > 0) details.push(`applied but not in prisma/migrations (the database is newer than this code?): ${status.unknown.join(", ")}`);
  const data = { ...status };
  if (problems.length > 0) return { status: "fail", summary: problems.join("; "), details, data };
  if (status.unknown.length > 0) return { status: "warn", summary: `${status.applied.length} of ${total} applied; ${plural(status.unknown.length, "unknown migration")} in the database`, details, data };
  return { status: "pass", summary: `${status.applied.length} of ${plural(total, "migration")} applied; none pending, failed or changed`, data };
};
