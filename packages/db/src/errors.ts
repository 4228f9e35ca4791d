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
 * The disk that holds the embedded database has too little free space: the
 * engine cannot open, or a write failed for want of room (PostgreSQL's
 * disk_full, 53100). The message says how much is free, how much the engine
 * needs, and where to free it.
 */
export class DiskFullError extends UserFacingError {
  override readonly name = "DiskFullError";
  /** PostgreSQL's SQLSTATE for it, so errorCode() reads it as the engine's own disk_full. */
  readonly code = "53100";
}

/**
 * The embedded engine stopped on a fatal error (a PostgreSQL PANIC, e.g. a WAL
 * segment it could not create on a full disk) and was closed; the next use
 * opens it again once that can work. The call that met it failed and wrote
 * nothing after its last commit.
 */
export class EmbeddedEngineStoppedError extends UserFacingError {
  override readonly name = "EmbeddedEngineStoppedError";
}

/**
 * True when `error` says the database as a whole cannot write now (its disk is
 * full, the embedded engine stopped), not that this one write was wrong: the
 * caller reports an outage (once, not once per write) and retries later.
 */
export function isWriteOutage(error: unknown): boolean {
  return error instanceof DiskFullError || error instanceof EmbeddedEngineStoppedError || errorCode(error) === "53100";
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
