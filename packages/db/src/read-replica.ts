import { z } from "zod";
import { InvalidDatabaseUrlError } from "./errors";
import { parseDatabaseUrl } from "./url";

/**
 * DATABASE_READ_URL: a read replica of DATABASE_URL's database, where verify's
 * read-only checks and the standalone dashboard read when it is set (writes
 * always go to DATABASE_URL). For an app's settings schema:
 * `sharedSettingsSchema.extend({ ...readReplicaSettings })`; validated as
 * DATABASE_URL is, each problem one line that never holds the password.
 */
export const DATABASE_READ_URL = "DATABASE_READ_URL";

export const readReplicaSettings = {
  [DATABASE_READ_URL]: z
    .string()
    .optional()
    .superRefine((value, ctx) => {
      if (value === undefined) return;
      if (value.trim() === "") {
        ctx.addIssue({ code: "custom", message: `${DATABASE_READ_URL} is blank (only spaces); unset it to read from DATABASE_URL, or set it to the read replica's postgresql://user:password@host:5432/dbname` });
        return;
      }
      try {
        parseDatabaseUrl(value, DATABASE_READ_URL);
      } catch (error) {
        if (!(error instanceof InvalidDatabaseUrlError)) throw error;
        ctx.addIssue({ code: "custom", message: error.message });
      }
    }),
};

/**
 * A replica replicates a server: with DATABASE_URL unset (the embedded
 * database, which has none) a DATABASE_READ_URL is a mistake to name.
 */
export function readReplicaProblem(settings: { DATABASE_URL?: string | undefined; DATABASE_READ_URL?: string | undefined }): string | undefined {
  if (settings.DATABASE_READ_URL === undefined || settings.DATABASE_URL !== undefined) return undefined;
  return `${DATABASE_READ_URL} is set but DATABASE_URL is not: a read replica belongs to the bot's PostgreSQL server (the embedded database has none); set DATABASE_URL to that server, or unset ${DATABASE_READ_URL}`;
}
