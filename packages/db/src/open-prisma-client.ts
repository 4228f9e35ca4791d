import { silentLogger, type Logger } from "@candlekeep/core";
import { openDatabase, type Database } from "./connect";
import type { PrismaClient } from "./generated/prisma/client";

/** Where the bot's data is: the same settings the bot reads. */
export interface PrismaClientOptions {
  /** A PostgreSQL server (the bot's DATABASE_URL); unset or empty → the embedded database in `dataDir`. */
  databaseUrl?: string | undefined;
  /** PEM text of the server's CA (the bot's DATABASE_CA_CERT). */
  caCert?: string | undefined;
  /** The embedded database's directory (the bot's CANDLEKEEP_DATA_DIR); default ./.candlekeep, from the current directory. */
  dataDir?: string | undefined;
  /** Where connection retries are reported; default silent. */
  logger?: Logger;
}

export interface OpenPrismaClient {
  readonly prisma: PrismaClient;
  /** Where it points, safe to print (password redacted, or the data directory). */
  readonly target: string;
  close(): Promise<void>;
}

// The bot's default CANDLEKEEP_DATA_DIR.
const DEFAULT_DATA_DIR = "./.candlekeep";

/**
 * Prisma Client on the bot's database, for your own scripts (src/examples/query.ts
 * shows one); `close()` disconnects it. It never migrates: a database with pending
 * migrations is refused (MigrationsPendingError), so queries meet the tables
 * schema.prisma describes. The embedded engine serves one process at a time:
 * stop the bot first, or point both at a server.
 */
export async function openPrismaClient(options: PrismaClientOptions = {}): Promise<OpenPrismaClient> {
  const db: Database = await openDatabase({
    // An empty DATABASE_URL means unset, as for the bot (deploy dashboards create empty variables).
    databaseUrl: options.databaseUrl?.trim() === "" ? undefined : options.databaseUrl,
    caCert: options.caCert,
    dataDir: options.dataDir ?? DEFAULT_DATA_DIR,
    autoMigrate: false,
    logger: options.logger ?? silentLogger,
  });
  return { prisma: db.prisma, target: db.target, close: () => db.close() };
}
