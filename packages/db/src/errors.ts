import { UserFacingError } from "@candlekeep/core";

/** DATABASE_URL (or another connection string) is malformed. Never holds the password. */
export class InvalidDatabaseUrlError extends UserFacingError {
  override readonly name = "InvalidDatabaseUrlError";
}

/** The server could not be reached, or refused us, after the allowed attempts. */
export class DatabaseUnreachableError extends UserFacingError {
  override readonly name = "DatabaseUnreachableError";
}

/** Migrations exist on disk that the database has not applied, and we may not apply them. */
export class MigrationsPendingError extends UserFacingError {
  override readonly name = "MigrationsPendingError";
  constructor(
    readonly pending: readonly string[],
    message: string,
  ) {
    super(message);
  }
}

/** An applied migration's file changed since it was applied, or a migration failed. */
export class MigrationError extends UserFacingError {
  override readonly name = "MigrationError";
}

/**
 * The `code` of an error: a node system error's (ECONNREFUSED, EEXIST) or PostgreSQL's
 * SQLSTATE (23505). Not `instanceof Error`: errors from node's own modules may come from
 * another realm (jest's sandbox).
 */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") return error.code;
  return undefined;
}

/** True for PostgreSQL's own errors (a SQLSTATE): the server answered, so the connection is still in step with it. */
export function isServerError(error: unknown): boolean {
  return /^[0-9A-Z]{5}$/.test(errorCode(error) ?? "");
}
